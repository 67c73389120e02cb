import Foundation
import Glibc
import XCTest

/// Three hosts on one Ethernet segment, each in its own network namespace: `node1` and `node2`
/// (the cluster's nodes, interface `veth-am` as in docs/cluster.example.toml) and `client`
/// (interface `eth0`), each joined by a veth pair to a bridge `br0` in a fourth namespace, the
/// switch. Subnet 10.77.0.0/24: node1 .1, node2 .2, client .10; the tests use .100 as the VIP.
///
///     [node1 veth-am]──p-node1─┐
///     [node2 veth-am]──p-node2─┼─ br0  (switch namespace)
///     [client  eth0 ]──p-client┘
///
/// Names are unique per run (`vlab-PID-N-HOST`) so that concurrent runs never meet; namespaces
/// left by a run that died (its PID gone) are deleted when the next lab starts. `tearDown()`
/// (also called at deinit) stops the lab's servers by stopping their threads and deletes the four
/// namespaces, which takes the veth pairs and the bridge with them, then checks nothing is left.
public final class NetworkLab {
    public enum Host: String, CaseIterable {
        case node1, node2, client
    }

    public static let prefixLength = 24
    public static let namePrefix = "vlab-"
    private nonisolated(unsafe) static var created = 0

    public let id: String
    public private(set) var servers: [NameServer] = []
    private var tornDown = false

    public init() throws {
        Self.removeStaleLabs()
        Self.created += 1
        id = "\(Self.namePrefix)\(getpid())-\(Self.created)"
        do { try build() } catch {
            tearDown()
            throw error
        }
    }

    deinit { tearDown() }

    // MARK: - Names and addresses

    public var switchNamespace: String { "\(id)-switch" }
    public func namespace(_ host: Host) -> String { "\(id)-\(host.rawValue)" }
    public func namespacePath(_ host: Host) -> String { "/var/run/netns/\(namespace(host))" }
    public func interface(_ host: Host) -> String { host == .client ? "eth0" : "veth-am" }

    public func address(_ host: Host) -> String {
        switch host {
        case .node1: return "10.77.0.1"
        case .node2: return "10.77.0.2"
        case .client: return "10.77.0.10"
        }
    }

    private var allNamespaces: [String] { [switchNamespace] + Host.allCases.map(namespace) }

    // MARK: - Building and tearing down

    private func build() throws {
        for name in allNamespaces { try mustRun(["ip", "netns", "add", name]) }
        try mustRun(["ip", "-n", switchNamespace, "link", "add", "br0", "type", "bridge", "stp_state", "0"])
        try mustRun(["ip", "-n", switchNamespace, "link", "set", "br0", "up"])
        for host in Host.allCases {
            let port = "p-\(host.rawValue)"
            try mustRun(["ip", "-n", namespace(host), "link", "add", interface(host), "type", "veth",
                         "peer", "name", port, "netns", switchNamespace])
            try mustRun(["ip", "-n", switchNamespace, "link", "set", port, "master", "br0", "up"])
            try mustRun(["ip", "-n", namespace(host), "addr", "add", "\(address(host))/\(Self.prefixLength)", "dev", interface(host)])
            try mustRun(["ip", "-n", namespace(host), "link", "set", interface(host), "up"])
            try mustRun(["ip", "-n", namespace(host), "link", "set", "lo", "up"])
        }
    }

    /// Stops the servers, deletes the namespaces, and fails the current test if any is left.
    public func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        for server in servers { server.stop() }
        servers = []
        for name in allNamespaces where Self.existingNamespaces().contains(name) {
            _ = try? runCommand(["ip", "netns", "del", name])
        }
        let left = Self.existingNamespaces().filter { $0.hasPrefix(id + "-") }
        if !left.isEmpty { XCTFail("network namespaces left behind: \(left)") }
    }

    public static func existingNamespaces() -> [String] {
        guard let output = try? mustRun(["ip", "netns", "list"]) else { return [] }
        return output.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// Deletes the namespaces of labs whose test process no longer exists.
    public static func removeStaleLabs() {
        for name in existingNamespaces() where name.hasPrefix(namePrefix) {
            let pidText = name.dropFirst(namePrefix.count).prefix { $0 != "-" }
            guard let pid = Int32(pidText), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? runCommand(["ip", "netns", "del", name])
        }
    }

    // MARK: - Acting inside

    /// Runs `body` in the host's network namespace (see `inNetworkNamespace`).
    public func run<T>(in host: Host, _ body: @escaping () throws -> T) throws -> T {
        try inNetworkNamespace(namespacePath(host), body)
    }

    /// Runs a program in the host's network namespace only (`nsenter --net`), mounts untouched.
    @discardableResult
    public func command(in host: Host, _ arguments: [String], timeout: TimeInterval = 30) throws -> CommandResult {
        try runCommand(["nsenter", "--net=\(namespacePath(host))"] + arguments, timeout: timeout)
    }

    /// Takes the host's interface down or up again: down, the host neither sends nor answers
    /// anything on the segment (not even ARP), as a dead machine or a cut cable.
    public func setLink(of host: Host, up: Bool) throws {
        try mustRun(["ip", "-n", namespace(host), "link", "set", interface(host), up ? "up" : "down"])
    }

    /// Starts a `NameServer` answering the host's name on `port` in its namespace (all addresses).
    public func startNameServer(in host: Host, port: UInt16) throws {
        let server = try run(in: host) { try NameServer(name: host.rawValue, port: port) }
        servers.append(server)
    }

    /// The host's MAC address, as `ip link` shows it.
    public func mac(_ host: Host) throws -> String {
        let output = try mustRun(["ip", "-n", namespace(host), "-j", "link", "show", "dev", interface(host)])
        guard let links = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]],
              let mac = links.first?["address"] as? String else { throw TestFailure("no MAC in: \(output)") }
        return mac
    }

    /// The host's neighbour entry for `address` (`ip neigh`): its MAC and state, nil without one.
    public func neighbour(in host: Host, of address: String) throws -> (mac: String, state: String)? {
        let output = try mustRun(["ip", "-n", namespace(host), "-j", "neigh", "show", address, "dev", interface(host)])
        guard let entries = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]],
              let entry = entries.first, let mac = entry["lladdr"] as? String else { return nil }
        return (mac, (entry["state"] as? [String])?.joined(separator: ",") ?? "?")
    }

    /// The IPv4 addresses on the host's interface, as `ip addr` shows them (`10.77.0.1/24`...).
    public func addresses(on host: Host, interface name: String? = nil) throws -> [String] {
        let output = try mustRun(["ip", "-n", namespace(host), "-j", "-4", "addr", "show", "dev", name ?? interface(host)])
        guard let links = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else { return [] }
        return links.flatMap { link in
            ((link["addr_info"] as? [[String: Any]]) ?? []).compactMap { info in
                guard let local = info["local"] as? String, let prefix = info["prefixlen"] as? Int else { return nil }
                return "\(local)/\(prefix)"
            }
        }
    }
}
