import ArgumentParser
import ClusterConfig
import Glibc
import HeartbeatTransport
import Logging
import ReplTransport

/// `mirror witness --config FILE`: the arbitration service at the cluster file's `[witness] address`.
struct WitnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "witness",
        abstract: "Run the witness: decides which node may serve a module when the nodes lose each other.",
        discussion: """
        Run it on a third machine (not on either node), with the same cluster file and key file as the nodes. It \
        listens on UDP at [witness] address and answers the nodes' requests, authenticated with the cluster key: \
        one lease at a time per module, and never a node whose copy lacks the generation last served. It stays in \
        the foreground, logs every verdict on standard error, and stops on SIGTERM or SIGINT. The last served generation of \
        each module (and by whom) is kept in --state-dir. After a (re)start it refuses every request to serve for one \
        lease, since it has forgotten the leases it granted before, except from the node served last.
        """
    )

    @Option(name: .long, help: "The cluster file (TOML), the same as the nodes'.")
    var config: String

    @Option(name: .long, help: "Seconds a grant holds; the nodes' lease must not be longer.")
    var lease: Double = 10

    @Option(name: .long, help: "Where the last served generation of each module is kept.")
    var stateDir: String = WitnessServiceConfiguration.defaultStateDirectory

    func validate() throws {
        guard lease >= 0.1, lease <= 3600 else { throw ValidationError("--lease must be between 0.1 and 3600 seconds") }
    }

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "mirror-witness")
        let service: WitnessService
        do {
            let cluster: ClusterConfiguration
            do {
                cluster = try ClusterConfiguration.load(path: config)
            } catch let errors as ConfigurationErrors {
                throw Failure(message: errors.issues.map { "\($0)" }.joined(separator: "\n"))
            }
            let key: [UInt8]
            switch PresharedKey.read(cluster.keyFile) {
            case .success(let bytes): key = bytes
            case .failure(let problem): throw Failure(message: "\(config): \(problem)")
            }
            let configuration = try WitnessServiceConfiguration(
                cluster: cluster, presharedKey: key, lease: .milliseconds(Int64((lease * 1000).rounded())), stateDirectory: stateDir)
            // Signals go to this thread only, which waits for them; the service runs on its own.
            StopSignals.blockInThisAndNewThreads()
            service = try WitnessService(configuration: configuration, logger: logger)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(message: "\(error)")
        }
        let finished = Monitor()
        var done = false
        BackgroundThread.start {
            service.run()
            finished.locked { done = true; finished.broadcast() }
        }
        var set = StopSignals.witness
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        logger.info("\(received == SIGINT ? "SIGINT" : "SIGTERM"): stopping")
        service.stop()
        finished.locked { while !done { _ = finished.wait(until: nil) } }
    }
}

extension StopSignals {
    /// SIGTERM and SIGINT (SIGHUP is blocked as well and ignored).
    static var witness: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        return set
    }
}
