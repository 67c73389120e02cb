/// A node's side of the witness protocol: the lease it holds and when it last asked.
///
/// A grant for a request sent at tick `t` is valid until `t + leaseTicks` (exclusive), counted
/// from the *sending* tick, so it always ends before the witness's own record of it.
struct WitnessLease: Sendable {
    private(set) var grantedRequest: TickStamp?
    private(set) var generation: GenerationID?
    private(set) var validUntil: Int = 0
    private(set) var lastAsked: Int?
    private(set) var lastAskedGeneration: GenerationID?

    /// Whether the lease lets this node serve under `generation` at `now`.
    func allows(_ generation: GenerationID, now: Int) -> Bool {
        self.generation == generation && now < validUntil
    }

    /// Whether it is time to send another request for `generation` (at once for a new generation).
    func askIsDue(for generation: GenerationID, now: Int, every renewTicks: Int) -> Bool {
        guard let last = lastAsked, lastAskedGeneration == generation else { return true }
        return now - last >= renewTicks
    }

    mutating func asked(for generation: GenerationID, at now: Int) {
        lastAsked = now
        lastAskedGeneration = generation
    }

    /// Takes a grant into account; refusals, and verdicts for another incarnation or from the future, change nothing.
    mutating func received(_ verdict: WitnessVerdict, incarnation: UInt64, now: Int, leaseTicks: Int) {
        guard verdict.mayServe, verdict.request.incarnation == incarnation, verdict.request.tick <= now else { return }
        let until = verdict.request.tick + leaseTicks
        if generation != verdict.servingGeneration || until > validUntil {
            grantedRequest = verdict.request
            generation = verdict.servingGeneration
            validUntil = until
        }
    }

    /// Forgets the lease (after leaving the serving states); returns the stamp to release, if it was held.
    @discardableResult
    mutating func drop() -> TickStamp? {
        defer { grantedRequest = nil; generation = nil; validUntil = 0 }
        return grantedRequest
    }
}
