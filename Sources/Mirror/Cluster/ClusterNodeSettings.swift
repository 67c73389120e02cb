import ClusterConfig
import MirrorCore

/// What the cluster daemon's modules share: the node's identity and path prefix, the timing of
/// the state machine (durations turned into ticks), and the operator's run-time toggles.
struct ClusterNodeSettings {
    /// The state machine's unit of time.
    static let tick = Duration.milliseconds(100)

    let nodeName: String
    let peerName: String
    let heartbeatInterval: Duration
    let heartbeatTimeout: Duration
    let hasWitness: Bool
    /// Longest a start or stop script may run before it is killed.
    let scriptTimeout: Duration
    /// The node's path prefix applied to a path of the cluster file.
    let localPath: (String) -> String
    /// The operator's toggles (`clusterctl checker`, `clusterctl errd`), which survive restarts.
    let isCheckerEnabled: (_ module: String, _ checker: String) -> Bool
    let isErrdEnabled: (_ module: String) -> Bool

    /// The state machine's settings for `module`, in ticks.
    func moduleConfig(for module: Module) -> ModuleConfig {
        let restartLimit = module.processMonitors.map(\.maxRestarts).min() ?? ProcessMonitor.Defaults.maxRestarts
        let window = module.processMonitors.map(\.restartWindow).max() ?? ProcessMonitor.Defaults.restartWindow
        return ModuleConfig(node: nodeName, peer: peerName, heartbeatIntervalTicks: max(1, Self.ticks(heartbeatInterval)),
                            peerTimeoutTicks: max(2, Self.ticks(heartbeatTimeout)),
                            witness: hasWitness ? WitnessTiming(answerTicks: Self.ticks(.seconds(2)), leaseTicks: Self.ticks(.seconds(10)),
                                                                renewTicks: Self.ticks(.seconds(2))) : nil,
                            processRestartLimit: restartLimit, processRestartWindowTicks: Self.ticks(window))
    }

    /// Whole ticks in `duration`, rounded up.
    static func ticks(_ duration: Duration) -> Int {
        let tick = Self.tick.components.attoseconds
        let (seconds, attoseconds) = duration.components
        return Int(seconds * (1_000_000_000_000_000_000 / tick) + (attoseconds + tick - 1) / tick)
    }
}
