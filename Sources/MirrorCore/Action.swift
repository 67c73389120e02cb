/// Something the daemon must do, in the order given. Persisting generations always comes before
/// mounting read-write or adding the virtual IP in the same list.
public enum Action: Equatable, Sendable {
    /// Write the generations durably (fsync) before doing anything that follows.
    case persistGenerations(DataGenerations)
    case mountReadWrite
    case mountReadOnly
    case unmount
    case runStartScript
    case runStopScript
    case addVirtualIP
    case removeVirtualIP
    case startResync(ResyncPlan)
    case stopResync
    case restartProcess
    case askWitness(WitnessRequest)
    /// Send this heartbeat to the peer on every path.
    case announce(Heartbeat)
    /// A line for the log, with the stable name of the rule that applied.
    case log(rule: String, message: String)
    /// A command was not carried out, or (command nil) an automatic step was refused, e.g. a
    /// resync that would resolve a divergence; the reason names the rule.
    case refuse(Command?, reason: String)

    /// A short name used in docs/state-machine.md and test output (payloads left out, except the
    /// resync plan).
    public var summary: String {
        switch self {
        case .persistGenerations: return "persist"
        case .mountReadWrite: return "mount-rw"
        case .mountReadOnly: return "mount-ro"
        case .unmount: return "unmount"
        case .runStartScript: return "start-script"
        case .runStopScript: return "stop-script"
        case .addVirtualIP: return "add-vip"
        case .removeVirtualIP: return "remove-vip"
        case .startResync(let plan): return "start-resync(\(plan))"
        case .stopResync: return "stop-resync"
        case .restartProcess: return "restart-process"
        case .askWitness(let request): return request.kind == .serve ? "ask-witness" : "release-witness"
        case .announce: return "announce"
        case .log(let rule, _): return "log(\(rule))"
        case .refuse: return "refuse"
        }
    }
}
