import Glibc
import Logging
import ReplFS
import ReplTransport

/// One replicated directory of a module in the cluster daemon, mounted for the role the module's
/// state machine gives this node: read-only and taking the primary's stream (SECOND),
/// read-write with every change replicated (PRIM, ALONE), or not at all (STOP, WAIT).
///
/// The copy underneath the mount is opened once, before anything is mounted over it; the
/// replication listener hands it the streams its ``gate`` admits.
final class UnitRuntime {
    /// How the directory is mounted now.
    enum Mode: String {
        case unmounted, readOnly = "read-only", readWrite = "read-write"
    }

    let plan: UnitPlan
    let path: String
    let state: UnitState
    let status: UnitStatus
    /// This directory as the replication listener sees it.
    let secondary: SecondaryUnit
    private let node: NodePlan
    private let logger: Logger
    /// Holds changes made without the peer after replication was lost, until the module's
    /// runtime lets them go (the peer knows its copy is out of date, or is gone).
    let aloneFence = AloneFence()
    private(set) var mode = Mode.unmounted
    private var mount: LiveMount?
    private var link: PrimaryLink?

    init(plan: UnitPlan, node: NodePlan, logger: Logger, observer: @escaping (ResyncMoment) -> Void) throws {
        self.plan = plan
        self.node = node
        self.logger = logger
        path = try MountPoint.prepare(plan.directory) { logger.warning("\($0)") }
        state = try UnitState(directory: plan.stateDirectory, regionSize: node.regionSize)
        status = UnitStatus(directory: plan.stateDirectory, unit: plan, role: "stopped")
        status.set("generation", "\(state.generations.generations)")
        secondary = SecondaryUnit(plan: plan, state: state, copyFD: try MountPoint.openBacking(path), status: status,
                                  gate: ReceivingGate(open: false), observer: observer)
    }

    /// SECOND: mounted read-only for applications, the primary's stream admitted.
    func mountReadOnly() throws {
        guard mode != .readOnly else { return }
        unmount()
        mount = try LiveMount(path: path, copyFD: secondary.copyFD, options: .replica, threads: 2, replicator: nil, logger: logger)
        mode = .readOnly
        secondary.gate.open()
        status.set("role", "secondary")
    }

    /// PRIM or ALONE: mounted read-write; the link replicates to the peer whenever it is SECOND.
    /// - Parameters:
    ///   - startAlone: persists a new generation when replication is lost (the data layer's hook).
    ///   - observer: when to connect, and what became of each resync.
    func mountReadWrite(startAlone: @escaping () throws -> Void, observer: LinkObserver) throws {
        guard mode != .readWrite else { return }
        unmount()
        aloneFence.reset()
        let replicator = Replicator(module: plan.index, moduleName: plan.name, journal: state.journal, logger: logger,
                                    fence: aloneFence) { [status, logger, plan] in
            try startAlone()
            logger.warning("module \(plan.name): replication lost; serving alone (changes journaled for the peer, held until the peer knows its copy is out of date)")
            status.set("peer", "alone (changes journaled)")
        }
        let mount = try LiveMount(path: path, copyFD: secondary.copyFD, options: ReplFSOptions(), threads: 4,
                                  replicator: replicator, logger: logger)
        let link = PrimaryLink(plan: node, unit: plan, state: state, replicator: replicator, copyFD: secondary.copyFD,
                               status: status, logger: logger)
        link.refusalPause = .seconds(2)
        link.observer = observer
        link.start(resyncingWith: nil)
        self.mount = mount
        self.link = link
        mode = .readWrite
        status.set("role", "primary")
        status.set("peer", "alone (changes journaled)")
    }

    /// Runs `body` with the directory mounted read-only and no stream admitted (before the module
    /// starts): what runs then, the stop script of an application a dead daemon left, reads the
    /// data but cannot change it behind replication's back.
    func whileMountedReadOnly<T>(_ body: () throws -> T) throws -> T {
        let mount = try LiveMount(path: path, copyFD: secondary.copyFD, options: .replica, threads: 1, replicator: nil, logger: logger)
        defer { mount.stop() }
        return try body()
    }

    /// Unmounts whatever is mounted; the streams and the link end first.
    func unmount() {
        secondary.gate.close()
        if let link {
            link.stop()
            link.replicator.retire()
        }
        link = nil
        mount?.stop()
        mount = nil
        mode = .unmounted
        status.set("role", "stopped")
        status.set("peer", "not connected")
    }

    /// Ends the resync this directory takes part in, if any (the stream is dropped; a new one
    /// starts when the state machine asks again).
    func stopResync() {
        if mode == .readOnly {
            secondary.gate.close()
            secondary.gate.open()
        } else if let link {
            link.replicator.detach(because: "resync stopped by the cluster")
        }
    }
}
