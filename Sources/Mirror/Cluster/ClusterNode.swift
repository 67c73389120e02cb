import ClusterConfig
import Glibc
import HeartbeatTransport
import Logging
import MirrorCore
import ReplTransport

/// `mirror run` without `--role`: the cluster daemon of one node. Every module of the cluster
/// file gets its state machine (``ModuleRuntime``) fed by a tick every 100 ms, the peer's UDP
/// heartbeats on every path, the witness's verdicts and the data layer's reports; one
/// replication listener serves the peer's streams to the directories this node is SECOND of.
/// SIGTERM, SIGINT or SIGHUP stop every module (stop scripts, virtual IPs removed, unmounted)
/// before the daemon exits.
final class ClusterNode {
    let plan: NodePlan
    let logger: Logger
    private(set) var runtimes: [ModuleRuntime] = []
    private var heartbeats: HeartbeatChannel!
    private var listener: ReplicationListener?

    init(plan: NodePlan, logger: Logger) {
        self.plan = plan
        self.logger = logger
    }

    /// Runs until a stop signal; `autostart` says which modules start at once (boot on).
    func run(autostart: (String) -> Bool, toggles: Toggles) throws {
        StopSignals.blockInThisAndNewThreads()
        umask(0)
        let cluster = plan.cluster
        guard let node = cluster.node(named: plan.nodeName) else { throw Failure(message: "unknown node \(plan.nodeName)") }
        let settings = ClusterNodeSettings(nodeName: plan.nodeName, peerName: plan.peerName,
                                           heartbeatInterval: cluster.heartbeatInterval, heartbeatTimeout: cluster.heartbeatTimeout,
                                           hasWitness: cluster.witness != nil, scriptTimeout: .seconds(120),
                                           localPath: { node.localPath($0) },
                                           isCheckerEnabled: toggles.isCheckerEnabled, isErrdEnabled: toggles.isErrdEnabled)
        let router = HeartbeatRouter()
        do {
            heartbeats = try HeartbeatChannel(configuration: HeartbeatConfiguration(cluster: cluster, node: plan.nodeName,
                                                                                    presharedKey: plan.presharedKey),
                                              logger: logger) { heartbeat, module, _ in router.deliver(heartbeat, module: module) }
        } catch {
            throw Failure(message: "cannot open the heartbeat paths: \(error)")
        }
        let witness = cluster.witness == nil ? nil
            : try WitnessClient(cluster: cluster, node: plan.nodeName, presharedKey: plan.presharedKey, logger: logger)
        for module in cluster.modules {
            let relay = ResyncRelay()
            let units = try plan.units.filter { $0.moduleName == module.name }.enumerated().map { index, unit in
                try UnitRuntime(plan: unit, node: plan, logger: logger) { relay.runtime?.receivingResync(index, $0) }
            }
            let runtime = try ModuleRuntime(module: module, units: units, data: ModuleData(stores: units.map(\.state.generations)),
                                            settings: settings, heartbeats: heartbeats, witness: witness, logger: logger)
            relay.runtime = runtime
            runtimes.append(runtime)
        }
        router.runtimes = Dictionary(uniqueKeysWithValues: runtimes.map { ($0.name, $0) })
        let secondaries = runtimes.flatMap { $0.units.map(\.secondary) }
        listener = try ReplicationListener(address: plan.listenAddress, configuration: plan.handshake, logger: logger) { [plan, logger] channel in
            SecondarySession(plan: plan, units: secondaries, logger: logger).serve(channel)
        }
        for runtime in runtimes {
            let starts = autostart(runtime.name)
            logger.info("module \(runtime.name): \(starts ? "starting (boot on)" : "left in STOP (boot off): clusterctl start -m \(runtime.name) starts it")")
            runtime.start(autostart: starts)
        }
        BackgroundThread.start { [runtimes] in
            while true {
                usleep(UInt32(ClusterNodeSettings.tick.components.attoseconds / 1_000_000_000_000))
                for runtime in runtimes { runtime.post(.tick) }
            }
        }
        logger.info("node \(plan.nodeName) running \(runtimes.count) module(s); peer \(plan.peerName)")
        var signals = StopSignals.all
        var signal: Int32 = 0
        sigwait(&signals, &signal)
        logger.info("signal \(signal): stopping every module")
        shutdown()
    }

    /// Stops every module (scripts, virtual IPs, mounts), then the listener and heartbeats.
    private func shutdown() {
        for runtime in runtimes { runtime.post(.command(.stop)) }
        let deadline = ContinuousClock.now + .seconds(300)
        for runtime in runtimes {
            while runtime.snapshot.state != .stop && ContinuousClock.now < deadline { usleep(50_000) }
            runtime.waitForActions()
        }
        // Announce STOP a few more times so that the peer takes over at once rather than after the timeout.
        usleep(300_000)
        listener?.close()
        heartbeats.close()
        logger.info("node \(plan.nodeName) stopped")
    }
}

/// The operator's run-time toggles the daemon honours, looked up when used.
struct Toggles {
    let isCheckerEnabled: (_ module: String, _ checker: String) -> Bool
    let isErrdEnabled: (_ module: String) -> Bool
}

/// Hands each module's heartbeats to its runtime (set once every runtime exists).
final class HeartbeatRouter: @unchecked Sendable {
    private let lock = Monitor()
    private var table: [String: ModuleRuntime] = [:]

    var runtimes: [String: ModuleRuntime] {
        get { lock.locked { table } }
        set { lock.locked { table = newValue } }
    }

    func deliver(_ heartbeat: Heartbeat, module: String) { runtimes[module]?.received(heartbeat) }
}

/// Lets a directory report its resyncs to its module's runtime, created after it.
final class ResyncRelay {
    weak var runtime: ModuleRuntime?
}
