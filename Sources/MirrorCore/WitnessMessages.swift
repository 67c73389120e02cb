/// What a node asks the witness.
public enum WitnessRequestKind: String, Sendable {
    /// May I serve (or keep serving) under `servingGeneration`?
    case serve
    /// I stopped serving: drop the lease granted to the request with `stamp`.
    case release
}

/// A request from a node to the witness (the arbiter that decides who may serve when the nodes
/// cannot see each other).
public struct WitnessRequest: Equatable, Sendable {
    public var kind: WitnessRequestKind
    public var node: String
    /// Identifies the request; the verdict returns it. For `release`, the granted request's stamp.
    public var stamp: TickStamp
    /// The generation the node will write under once allowed to serve.
    public var servingGeneration: GenerationID
    /// The node's copy as it is now.
    public var data: DataGenerations
    /// An operator's forced `prim`: the data check is skipped, the lease is not.
    public var forced: Bool

    public init(kind: WitnessRequestKind, node: String, stamp: TickStamp, servingGeneration: GenerationID,
                data: DataGenerations, forced: Bool) {
        self.kind = kind
        self.node = node
        self.stamp = stamp
        self.servingGeneration = servingGeneration
        self.data = data
        self.forced = forced
    }
}

/// The witness's answer to a `serve` request.
public struct WitnessVerdict: Equatable, Sendable {
    public var mayServe: Bool
    /// The stamp of the request answered.
    public var request: TickStamp
    /// The generation the request asked to serve under.
    public var servingGeneration: GenerationID

    public init(mayServe: Bool, request: TickStamp, servingGeneration: GenerationID) {
        self.mayServe = mayServe
        self.request = request
        self.servingGeneration = servingGeneration
    }
}
