import MirrorCore

/// One simulated node: its daemon (nil while crashed), its disk, and what its actions put in place.
/// A class, so that the simulation mutates it in place instead of copying its state machine.
final class SimulatedNode {
    let name: String
    let config: ModuleConfig
    /// The state machine; nil while the node is down.
    var machine: ModuleNode? { didSet { state = machine?.state } }
    /// The machine's state, kept apart so that reading it does not copy the machine.
    private(set) var state: ModuleState?
    /// The persisted generations (survive crashes).
    var disk: DataGenerations
    /// Ghost: an id of the exact data this copy holds (survives crashes).
    var content: Int
    var mountedReadWrite = false
    var virtualIP = false
    var applicationRunning = false
    /// Tick at which this node started its side of the running resync, and the direction.
    var resyncSide: (since: Int, plan: ResyncPlan)?
    /// Ghost: every current generation this disk ever held.
    var currentsSeen: Set<GenerationID>
    /// An accepted `second` not yet carried out: discarding the history is allowed once.
    var secondAccepted = false
    /// An accepted `prim` not yet carried out: the next entry into serving is forced.
    var primAccepted = false
    /// Ticks until a crashed node comes back.
    var downFor = 0
    /// Incarnations started so far, so that each is unique.
    var incarnations: UInt64 = 0

    init(name: String, config: ModuleConfig, disk: DataGenerations) {
        self.name = name
        self.config = config
        self.disk = disk
        content = 0
        currentsSeen = [disk.current]
    }

    var isUp: Bool { state != nil }
    var isServing: Bool { state?.isServing ?? false }

    /// A new daemon: fresh incarnation and id seed, the disk's generations loaded.
    func boot(seed: UInt64) {
        incarnations += 1
        let node = ModuleNode(config: config, incarnation: incarnations << 32 | (seed & 0xFFFF_FFFF), generationSeed: seed)
        machine = node
    }

    /// The node loses power: everything not on disk is gone.
    func crash() {
        machine = nil
        mountedReadWrite = false
        virtualIP = false
        applicationRunning = false
        resyncSide = nil
        secondAccepted = false
        primAccepted = false
    }
}
