import ClusterConfig
import Glibc
import ReplTransport

/// One test of a checker (TCP connect, ping, interface up, custom script), with its timeout.
enum CheckerProbe {
    /// Why the checker's test fails now (nil: it passes); a script gets `environment` (module,
    /// node, prefix).
    static func failure(of checker: Checker, environment: [String: String]) -> String? {
        let timeout = checker.timeout ?? Checker.Defaults.timeout
        switch checker.kind {
        case .tcp(let endpoint):
            return tcpConnects(host: endpoint.host, port: endpoint.port, timeout: timeout) ? nil : "no TCP connection to \(endpoint)"
        case .ping(let host):
            let seconds = max(1, Int((Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18).rounded(.up)))
            return explain(ScriptRunner.run(["/usr/bin/ping", "-n", "-q", "-c", "1", "-W", "\(seconds)", host],
                                            timeout: timeout + .seconds(1), quiet: true), "ping \(host)")
        case .interface(let name):
            guard let state = (try? GenerationStore.contents(of: "/sys/class/net/\(name)/operstate")) ?? nil else {
                return "no interface \(name)"
            }
            // Virtual links without a carrier notion (veth peers, lo) report "unknown" while up.
            let trimmed = state.trimmingCharacters(in: "\n")
            return trimmed == "up" || (trimmed == "unknown" && interfaceFlagsUp(name)) ? nil : "interface \(name) is \(trimmed)"
        case .script(let path):
            return explain(ScriptRunner.run([path], environment: environment, timeout: timeout, quiet: true), path)
        }
    }

    private static func explain(_ outcome: ScriptRunner.Outcome, _ what: String) -> String? {
        outcome.succeeded ? nil : "\(what): \(outcome)"
    }

    /// Whether the checker tests the application itself, so only where the module serves.
    static func runsOnlyWhereServing(_ checker: Checker) -> Bool {
        switch checker.kind {
        case .tcp, .script: return true
        case .ping, .interface: return false
        }
    }

    private static func interfaceFlagsUp(_ name: String) -> Bool {
        guard let text = (try? GenerationStore.contents(of: "/sys/class/net/\(name)/flags")) ?? nil,
              let flags = Int(text.trimmingCharacters(in: "\n").dropFirst(2), radix: 16) else { return false }
        return flags & Int(IFF_UP) != 0
    }

    private static func tcpConnects(host: String, port: UInt16, timeout: Duration) -> Bool {
        guard var address = (try? AddressResolution.resolve(NetworkAddress(host: host, port: port), passive: false))?.first else {
            return false
        }
        let fd = socket(Int32(address.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let length = AddressResolution.length(of: address)
        let started = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        if started == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) == 1 else { return false }
        var error: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
        return error == 0
    }
}
