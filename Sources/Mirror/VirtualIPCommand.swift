import ArgumentParser
import Glibc
import VirtualIP

/// `mirror vip add|del|announce|probe|status|health`: the virtual IP operations the daemon performs,
/// one at a time, for diagnosis. They act in the caller's network namespace (run them under
/// `nsenter --net=/var/run/netns/NAME` to act in another one).
struct VirtualIPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vip",
        abstract: "Add, remove, announce and check a virtual IP by hand; serve a health endpoint.",
        discussion: """
        Exit status: 0 on success, 1 on error (one line on standard error naming the interface and address), 64 for a \
        malformed command line, \
        3 for 'status' when the address is absent and for 'probe' when another host answers.
        """,
        subcommands: [Add.self, Delete.self, Announce.self, Probe.self, Status.self, Health.self]
    )

    struct Target: ParsableArguments {
        @Argument(help: "The virtual IP as ADDRESS/PREFIX, e.g. 10.77.0.100/24 (IPv4).")
        var address: String

        @Option(name: .long, help: "The interface that carries it, e.g. eth0.")
        var interface: String

        func virtualAddress() throws -> VirtualAddress {
            do { return try VirtualAddress(cidr: address, interface: interface) } catch { throw ValidationError("\(error)") }
        }
    }

    struct Announcing: ParsableArguments {
        @Option(name: .long, help: "Gratuitous ARP rounds, each a broadcast request and reply.")
        var count = 3

        @Option(name: .long, help: "Milliseconds between rounds.")
        var intervalMs = 200

        func validate() throws {
            guard (0...100).contains(count) else { throw ValidationError("--count must be 0 to 100") }
            guard (0...10_000).contains(intervalMs) else { throw ValidationError("--interval-ms must be 0 to 10000") }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add the address on the interface (nothing if already there), then announce it with gratuitous ARP.",
            discussion: """
            Refused, changing nothing, when the interface is missing or down, when this host has the address on \
            another interface or with another prefix, or when another host answers the ARP probe sent first.
            """
        )

        @OptionGroup var target: Target
        @OptionGroup var announcing: Announcing

        @Option(name: .long, help: "Milliseconds to wait for an answer to the ARP probe.")
        var probeTimeoutMs = 200

        @Flag(name: .long, help: "Add even if another host holds the address (no ARP probe).")
        var noProbe = false

        func run() throws {
            let vip = try target.virtualAddress()
            let manager = VirtualIPManager(options: .init(
                announcements: announcing.count, announcementInterval: Double(announcing.intervalMs) / 1000,
                probeTimeout: noProbe ? nil : Double(probeTimeoutMs) / 1000))
            let outcome = try perform { try manager.add(vip) }
            let link = try perform { try manager.interface(named: vip.interface) }
            let announced = link.usesARP && announcing.count > 0
                ? "; announced with \(announcing.count) gratuitous ARP round(s) from \(link.macAddress.map(String.init(describing:)) ?? "?")"
                : ""
            print(outcome == .added ? "added \(vip)\(announced)" : "\(vip) was already there\(announced)")
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "del", abstract: "Remove the address from the interface (nothing if absent).", aliases: ["remove"])

        @OptionGroup var target: Target

        func run() throws {
            let vip = try target.virtualAddress()
            let outcome = try perform { try VirtualIPManager().remove(vip) }
            print(outcome == .removed ? "removed \(vip)" : "\(vip) was not there")
        }
    }

    struct Announce: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Broadcast gratuitous ARP for the address from the interface's MAC (whether or not it is assigned).")

        @Argument(help: "The IPv4 address.")
        var address: String

        @Option(name: .long, help: "The interface to announce it on.")
        var interface: String

        @OptionGroup var announcing: Announcing

        func run() throws {
            guard let ip = IPv4Address(address) else { throw ValidationError("\"\(address)\" is not an IPv4 address") }
            let manager = VirtualIPManager(options: .init(
                announcements: announcing.count, announcementInterval: Double(announcing.intervalMs) / 1000))
            let frames = try perform { try manager.announce(ip, on: interface) }
            print("announced \(ip) on \(interface): \(frames) gratuitous ARP frames")
        }
    }

    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the link who has the address (ARP probe, RFC 5227); exit 3 when another host answers.")

        @Argument(help: "The IPv4 address.")
        var address: String

        @Option(name: .long, help: "The interface to probe on.")
        var interface: String

        @Option(name: .long, help: "Milliseconds to wait for an answer.")
        var timeoutMs = 500

        func run() throws {
            guard let ip = IPv4Address(address) else { throw ValidationError("\"\(address)\" is not an IPv4 address") }
            if let owner = try perform({ try VirtualIPManager().probe(ip, on: interface, timeout: Double(timeoutMs) / 1000) }) {
                print("\(ip) is in use on \(interface): answered by \(owner)")
                throw ExitCode(3)
            }
            print("nobody answered for \(ip) on \(interface) within \(timeoutMs) ms")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Whether the interface carries the address with this prefix; exit 3 when absent.")

        @OptionGroup var target: Target

        func run() throws {
            let vip = try target.virtualAddress()
            guard try perform({ try VirtualIPManager().isPresent(vip) }) else {
                print("absent: \(vip)")
                throw ExitCode(3)
            }
            print("present: \(vip)")
        }
    }

    struct Health: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the HTTP health endpoint with fixed states, to try a load balancer's health check.",
            discussion: """
            GET /health/MODULE answers 200 where the module's state is PRIM or ALONE, 503 otherwise, 404 for a \
            module not given. Runs until SIGTERM or SIGINT.
            """
        )

        @Option(name: .long, help: "Address to listen on (an IP literal).")
        var listen = "0.0.0.0"

        @Option(name: .long, help: "TCP port (0: any free port, printed).")
        var port: UInt16 = 8080

        @Option(name: .long, parsing: .singleValue, help: "MODULE=STATE, e.g. AM=PRIM (repeatable).")
        var state: [String] = []

        func run() throws {
            var states: [String: String] = [:]
            for pair in state {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw ValidationError("--state takes MODULE=STATE, not \"\(pair)\"")
                }
                states[String(parts[0])] = String(parts[1])
            }
            StopSignals.blockInThisAndNewThreads()
            let fixed = states
            let endpoint = try perform { try HealthEndpoint(host: listen, port: port, states: { fixed[$0] }) }
            endpoint.start()
            print("health endpoint listening on \(listen.contains(":") ? "[\(listen)]" : listen):\(endpoint.port)")
            fflush(stdout)
            var set = StopSignals.all
            var received: Int32 = 0
            sigwait(&set, &received)
            endpoint.stop()
        }
    }
}

/// Runs a virtual IP operation, turning its error into the command's one-line failure.
private func perform<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as VirtualIPError {
        throw Failure(message: error.description)
    } catch let error as HealthEndpointError {
        throw Failure(message: error.description)
    }
}
