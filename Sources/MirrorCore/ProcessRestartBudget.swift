/// "Restart a dead process at most N times in T ticks" (SafeKit's errd policy).
struct ProcessRestartBudget: Sendable {
    let limit: Int
    let windowTicks: Int
    private var deaths: [Int] = []

    init(limit: Int, windowTicks: Int) {
        self.limit = limit
        self.windowTicks = windowTicks
    }

    /// Records a death at `now`; true if a local restart is still allowed.
    mutating func allowsRestart(afterDeathAt now: Int) -> Bool {
        deaths = deaths.filter { now - $0 < windowTicks } + [now]
        return deaths.count <= limit
    }

    mutating func reset() { deaths = [] }
}
