import ClusterConfig
import ControlChannel
import Glibc
import HeartbeatTransport
import Logging
import MirrorCore
import ReplTransport
import VirtualIP

/// `mirror run` without `--role`: the cluster daemon of one node. Every module of the cluster
/// file gets its state machine (``ModuleRuntime``) fed by a tick every 100 ms, the peer's UDP
/// heartbeats on every path, the witness's verdicts and the data layer's reports; one
/// replication listener serves the peer's streams to the directories this node is SECOND of.
/// The control socket serves `clusterctl`; each module's operator settings (boot, errd,
/// checkers) live in its state directory. SIGTERM, SIGINT or SIGHUP stop every module (stop
/// scripts, virtual IPs removed, unmounted) before the daemon exits.
final class ClusterNode {
    let plan: NodePlan
    let logger: Logger
    private(set) var runtimes: [ModuleRuntime] = []
    private var heartbeats: HeartbeatChannel!
    private var listener: ReplicationListener?
    private var control: ControlServer?
    private var health: HealthEndpoint?

    init(plan: NodePlan, logger: Logger) {
        self.plan = plan
        self.logger = logger
    }

    /// Runs until a stop signal, serving `clusterctl` on `controlSocket`.
    func run(controlSocket: String) throws {
        StopSignals.blockInThisAndNewThreads()
        umask(0)
        let cluster = plan.cluster
        guard let node = cluster.node(named: plan.nodeName) else { throw Failure(message: "unknown node \(plan.nodeName)") }
        let stateRoot = node.localPath(cluster.stateDirectory)
        var toggles: [String: ModuleSettings] = [:]
        for module in cluster.modules {
            do {
                toggles[module.name] = try ModuleSettings(directory: stateRoot + "/" + module.name)
            } catch {
                throw Failure(message: "module \(module.name): \(error)")
            }
        }
        let togglesLock = Monitor()
        let settings = ClusterNodeSettings(nodeName: plan.nodeName, peerName: plan.peerName,
                                           heartbeatInterval: cluster.heartbeatInterval, heartbeatTimeout: cluster.heartbeatTimeout,
                                           hasWitness: cluster.witness != nil, scriptTimeout: .seconds(120),
                                           localPath: { node.localPath($0) },
                                           isCheckerEnabled: { module, checker in togglesLock.locked { toggles[module]?.isCheckerEnabled(checker) ?? true } },
                                           isErrdEnabled: { module in togglesLock.locked { toggles[module]?.errdEnabled ?? true } })
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
                                            stateDirectory: stateRoot + "/" + module.name,
                                            settings: settings, heartbeats: heartbeats, witness: witness, logger: logger)
            relay.runtime = runtime
            runtimes.append(runtime)
        }
        router.runtimes = Dictionary(uniqueKeysWithValues: runtimes.map { ($0.name, $0) })
        let handler = ControlHandler(plan: plan, runtimes: runtimes, settings: toggles, settingsLock: togglesLock, logger: logger)
        let peer = PeerControl(plan: plan, logger: logger)
        let answerPeer: ([UInt8]) -> [UInt8] = { body in
            let response: ControlResponse
            do {
                response = handler.handle(try ControlJSON.decode(ControlRequest.self, from: body))
            } catch {
                response = .refused("unreadable request: \(error)")
            }
            return Array(((try? ControlJSON.line(response)) ?? #"{"ok":false,"message":"","error":"cannot encode the answer"}"#).utf8)
        }
        let secondaries = runtimes.flatMap { $0.units.map(\.secondary) }
        listener = try ReplicationListener(address: plan.listenAddress, configuration: plan.handshake, logger: logger) { [plan, logger] channel in
            SecondarySession(plan: plan, units: secondaries, logger: logger, peerControl: answerPeer).serve(channel)
        }
        do {
            control = try ControlServer(path: controlSocket) { [plan] request in
                Self.route(request, node: plan.nodeName, peerName: plan.peerName, local: handler, peer: peer)
            }
        } catch {
            throw Failure(message: "cannot serve the control socket: \(error)")
        }
        if let address = node.healthAddress {
            let table = router.runtimes
            do {
                health = try HealthEndpoint(host: address.host, port: address.port) { module in table[module]?.snapshot.state.rawValue }
            } catch {
                throw Failure(message: "cannot serve the health endpoint on \(address): \(error)")
            }
            health?.start()
            logger.info("health endpoint on \(address): GET /health/MODULE answers 200 where the module is PRIM or ALONE")
        }
        for runtime in runtimes {
            let starts = togglesLock.locked { toggles[runtime.name]?.boot ?? true }
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
        control?.stop()
        health?.stop()
        listener?.close()
        heartbeats.close()
        logger.info("node \(plan.nodeName) stopped")
    }
}

extension ClusterNode {
    /// Sends a request where `-H` aims it: this node, the peer, or both (`all`).
    static func route(_ request: ControlRequest, node: String, peerName: String, local: ControlHandler,
                      peer: PeerControl) -> ControlResponse {
        var here = request
        here.host = nil
        switch request.host {
        case nil, node?:
            return local.handle(here)
        case peerName?:
            return peer.send(here)
        case "all"?:
            let answers = [(node, local.handle(here)), (peerName, peer.send(here))]
            let refusals = answers.compactMap { name, answer in answer.error.map { "\(name): \($0)" } }
            let message = answers.map { name, answer in answer.message.isEmpty ? "" : "\(name): \(answer.message)" }
                .filter { !$0.isEmpty }.joined(separator: "\n")
            return ControlResponse(ok: refusals.isEmpty, message: message,
                                   error: refusals.isEmpty ? nil : refusals.joined(separator: "; "), status: answers[0].1.status)
        case let other?:
            return .refused("unknown node \"\(other)\" for -H (nodes: \(node), \(peerName), all)")
        }
    }
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
