import ArgumentParser
import ControlChannel
import Logging

/// `mirror run --config FILE --node NAME`: runs one node of the cluster for every module of the
/// cluster file; the module state machines elect the roles. `--role primary|secondary` fixes the
/// role by hand instead (replication only: no heartbeats, failover, virtual IP or scripts).
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a node of the cluster: state machines, heartbeats, failover, replication.",
        discussion: """
        Without --role, every module of the cluster file runs its state machine (STOP, WAIT, ALONE, PRIM, \
        SECOND) with the peer: UDP heartbeats on every path, automatic failover (mount read-write, virtual IP, \
        start script), resynchronisation of what changed, checkers and process monitoring (docs/cluster.md). \
        Modules whose boot setting is off stay in STOP until `clusterctl start`.

        With --role, the node only replicates, with the role given: the secondary listens on its replication address and applies what the primary sends to its copy of the \
        module's directory, which it mounts read-only for applications (each change visible at once). The primary connects to the secondary, then mounts \
        ReplFS over its directory; every change returns to the application once the secondary applied it, or \
        once the secondary is lost (the primary then goes on alone, recording what changed in its journal, and \
        resynchronises the secondary when it returns). Each node keeps the module's data generations and journal \
        in its state directory (state_dir); a copy that is older than its peer's, or that diverged from it, is \
        never resynchronised automatically. Every directory of every module is run, each with its own mount, stream, generations and journal.
        """
    )

    /// A role fixed by hand (replication only), instead of the cluster logic electing one.
    enum Role: String, ExpressibleByArgument {
        case primary, secondary
    }

    @Option(name: .long, help: "The cluster file (TOML), the same on both nodes.")
    var config: String

    @Option(name: .long, help: "This node's name in the cluster file.")
    var node: String

    @Option(name: .long, help: "primary or secondary: replication only, with this role fixed (no cluster logic).")
    var role: Role?

    @Flag(name: .long, help: """
        Primary only: serve this node's copy even though it is not up to date (a resync towards it did not \
        complete); it becomes the reference and the peer is resynchronised from it.
        """)
    var force = false

    @Option(name: .long, help: "Primary only: seconds to wait for the secondary before serving alone (default 10).")
    var peerWait: Double = 10

    @Option(name: .long, help: ArgumentHelp(
        "The control socket clusterctl talks to (default /run/mirror/control.sock, under the node's path_prefix if it has one).",
        valueName: "path"))
    var controlSocket: String?

    @Flag(name: .long, help: "Stay in the foreground (required in this version).")
    var foreground = false

    func validate() throws {
        guard foreground else { throw ValidationError("only --foreground is supported for now") }
        if role == nil && force { throw ValidationError("--force goes with --role primary; in the cluster, use clusterctl prim") }
        guard peerWait >= 0, peerWait <= 3600 else { throw ValidationError("--peer-wait must be between 0 and 3600 seconds") }
    }

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "mirror")
        logger[metadataKey: "node"] = "\(node)"
        do {
            let plan = try NodePlan.load(config: config, node: node)
            switch role {
            case .secondary?: try SecondaryNode.run(plan, logger: logger)
            case .primary?: try PrimaryNode.run(plan, force: force, peerWait: .milliseconds(Int64(peerWait * 1000)), logger: logger)
            case nil:
                let socket = controlSocket ?? plan.cluster.node(named: node).map { $0.localPath(ControlClient.defaultSocketPath) }
                    ?? ControlClient.defaultSocketPath
                try ClusterNode(plan: plan, logger: logger).run(controlSocket: socket)
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(message: "\(error)")
        }
    }
}
