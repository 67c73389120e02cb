/// Timing of the witness protocol, in ticks of the asking node.
public struct WitnessTiming: Equatable, Sendable {
    /// A PRIM that lost its peer must be allowed to serve alone within this many ticks, or it stops serving.
    public var answerTicks: Int
    /// A grant lets a node serve for this many ticks after it sent the request.
    public var leaseTicks: Int
    /// A serving node asks again this often (must be well below `leaseTicks`).
    public var renewTicks: Int

    public init(answerTicks: Int = 8, leaseTicks: Int = 40, renewTicks: Int = 8) {
        self.answerTicks = answerTicks
        self.leaseTicks = leaseTicks
        self.renewTicks = renewTicks
    }
}

/// The settings of one module on one node that the state machine needs. Durations count ticks
/// (the daemon ticks at a fixed rate, e.g. every 250 ms).
public struct ModuleConfig: Equatable, Sendable {
    public var node: String
    public var peer: String
    /// Send a heartbeat every this many ticks (and on every change).
    public var heartbeatIntervalTicks: Int
    /// The peer is lost when not heard, or not hearing us, for this many ticks.
    public var peerTimeoutTicks: Int
    /// Nil without a witness.
    public var witness: WitnessTiming?
    /// A dead application process is restarted at most this many times ...
    public var processRestartLimit: Int
    /// ... within this many ticks; one more death stops the module here.
    public var processRestartWindowTicks: Int

    public init(node: String, peer: String, heartbeatIntervalTicks: Int = 2, peerTimeoutTicks: Int = 12,
                witness: WitnessTiming? = nil, processRestartLimit: Int = 3, processRestartWindowTicks: Int = 240) {
        self.node = node
        self.peer = peer
        self.heartbeatIntervalTicks = heartbeatIntervalTicks
        self.peerTimeoutTicks = peerTimeoutTicks
        self.witness = witness
        self.processRestartLimit = processRestartLimit
        self.processRestartWindowTicks = processRestartWindowTicks
    }

    /// How long a node that is not serving waits after last hearing its peer before it may take
    /// over: with a witness, long enough that a PRIM which lost us has already stopped serving
    /// unless the witness let it continue.
    public var takeoverTicks: Int {
        peerTimeoutTicks + (witness.map { $0.answerTicks + 1 } ?? 0)
    }
}
