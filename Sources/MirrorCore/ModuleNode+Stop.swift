extension ModuleNode {
    /// STOP: only commands matter; heartbeats are still exchanged so the pair stays known.
    mutating func stepStop(_ event: Event) {
        switch event {
        case .command(.start):
            state = .wait
            processBudget.reset()
            log("started", "module started")
        case .command(.prim):
            processBudget.reset()
            acceptPrim()
        case .command(.second):
            processBudget.reset()
            acceptSecond()
        case .command(.swap):
            emit(.refuse(.swap, reason: "the module is stopped here"))
        default:
            break
        }
    }
}
