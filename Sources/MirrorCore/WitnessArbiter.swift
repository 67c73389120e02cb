/// The witness's decision logic for one module (pure; the `mirror witness` service and the
/// simulation both run it).
///
/// It grants at most one node at a time a lease, and remembers the last generation it let a node
/// serve under: a node whose copy does not contain that generation is refused (its data is older
/// than what was served), unless the operator forced it (`prim`) or it is the node that asked.
/// A lease ends `leaseTicks` after the witness *received* the request, strictly after the node's
/// own view of it ends, so the nodes never both believe they hold it.
public struct WitnessArbiter: Sendable {
    public let leaseTicks: Int
    private var holder: (node: String, request: TickStamp, receivedAt: Int)?
    private var lastServed: (node: String, generation: GenerationID)?

    public init(leaseTicks: Int) { self.leaseTicks = leaseTicks }

    /// Answers a `serve` request (nil for a `release`, which needs no answer).
    public mutating func decide(_ request: WitnessRequest, now: Int) -> WitnessVerdict? {
        if request.kind == .release {
            if let h = holder, h.node == request.node, h.request == request.stamp { holder = nil }
            return nil
        }
        let refused = WitnessVerdict(mayServe: false, request: request.stamp, servingGeneration: request.servingGeneration)
        if let h = holder, h.node != request.node, now <= h.receivedAt + leaseTicks { return refused }
        if !request.forced, let served = lastServed, served.node != request.node, !request.data.knows(served.generation) {
            return refused
        }
        holder = (request.node, request.stamp, now)
        lastServed = (request.node, request.servingGeneration)
        return WitnessVerdict(mayServe: true, request: request.stamp, servingGeneration: request.servingGeneration)
    }

    /// The node currently holding the lease, if any.
    public func holder(at now: Int) -> String? {
        guard let h = holder, now <= h.receivedAt + leaseTicks else { return nil }
        return h.node
    }
}
