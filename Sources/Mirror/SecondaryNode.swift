import CLinux
import Glibc
import Logging
import MirrorCore
import ReplApply
import ReplFS
import ReplProtocol
import ReplTransport

/// The secondary's side of `mirror run`: accept the primary's connections (one per replicated
/// directory) and apply their streams to this node's copies, which applications see through
/// read-only ReplFS mounts; until SIGTERM, SIGINT or SIGHUP.
enum SecondaryNode {
    static func run(_ plan: NodePlan, logger: Logger) throws {
        StopSignals.blockInThisAndNewThreads()
        umask(0)
        var units: [SecondaryUnit] = []
        var mounts: [MountService.Mount] = []
        defer { for unit in units { close(unit.copyFD) } }
        for unit in plan.units {
            let path = try MountPoint.prepare(unit.directory) { logger.warning("\($0)") }
            let state = try UnitState(directory: unit.stateDirectory, regionSize: plan.regionSize)
            // Opened before the mount hides the directory: the applier works underneath it.
            let status = UnitStatus(directory: unit.stateDirectory, unit: unit, role: "secondary")
            status.set("generation", "\(state.generations.generations)")
            units.append(SecondaryUnit(plan: unit, state: state, copyFD: try MountPoint.openBacking(path), status: status,
                                       gate: ReceivingGate(open: true), observer: nil))
            mounts.append(MountService.Mount(path: path, options: .replica, threads: 2, replicator: nil))
            logger.info("module \(unit.name): secondary for \(path), mounted read-only for applications; generation \(state.generations.generations)")
        }
        let listener = try ReplicationListener(address: plan.listenAddress, configuration: plan.handshake, logger: logger) { channel in
            SecondarySession(plan: plan, units: units, logger: logger).serve(channel)
        }
        defer { listener.close() }
        try MountService.serve(mounts, logger: logger, readiness: nil)
    }
}

/// One replicated directory on the secondary: its plan, state and copy (opened before the mount),
/// and which connection feeds it: one primary stream at a time, while its gate is open.
struct SecondaryUnit {
    let plan: UnitPlan
    let state: UnitState
    let copyFD: Int32
    let status: UnitStatus
    let feeder = StreamClaim()
    /// Open while this node is the module's SECOND (always, with `--role secondary`).
    let gate: ReceivingGate
    /// Told when a resync of this copy starts, ends or breaks off (the cluster loop).
    let observer: ((ResyncMoment) -> Void)?
}

/// A point in the life of a resync this copy receives.
enum ResyncMoment {
    case began, ended, interrupted
}

/// Whether a copy takes a primary's stream now; closing it ends the streams it admitted.
final class ReceivingGate {
    private let monitor = Monitor()
    private var isOpen: Bool
    private var channels: [ObjectIdentifier: ReplicationChannel] = [:]

    init(open: Bool) { isOpen = open }

    func open() { monitor.locked { isOpen = true } }

    /// Refuses new streams and ends those it admitted.
    func close() {
        let admitted = monitor.locked { () -> [ReplicationChannel] in
            isOpen = false
            defer { channels = [:] }
            return Array(channels.values)
        }
        for channel in admitted { channel.close() }
    }

    /// Admits `session`'s stream if the gate is open.
    func admit(_ session: AnyObject, channel: ReplicationChannel) -> Bool {
        monitor.locked {
            guard isOpen else { return false }
            channels[ObjectIdentifier(session)] = channel
            return true
        }
    }

    func leave(_ session: AnyObject) { _ = monitor.locked { channels.removeValue(forKey: ObjectIdentifier(session)) } }
}

/// Which session applies a directory's stream; a second primary is refused while one is connected.
final class StreamClaim {
    private let monitor = Monitor()
    private var owner: ObjectIdentifier?

    /// Takes the claim for `session`; false if another session holds it.
    func take(for session: AnyObject) -> Bool {
        monitor.locked {
            guard owner == nil || owner == ObjectIdentifier(session) else { return false }
            owner = ObjectIdentifier(session)
            return true
        }
    }

    /// Gives the claim up if `session` holds it; returns whether it did.
    @discardableResult
    func release(by session: AnyObject) -> Bool {
        monitor.locked {
            guard owner == ObjectIdentifier(session) else { return false }
            owner = nil
            return true
        }
    }
}

/// One connection from the primary: the status exchange and its decision, then the stream of
/// live changes and resync messages, applied in order.
///
/// Nothing is applied before the primary's status was received and the connect decision lets
/// this node receive (its copy is equal to or older than the primary's, with a known history or
/// by checksum); otherwise every message is refused and the refusal logged with who changed
/// what since when. `resyncBegin` marks the copy not up to date on disk before anything of the
/// resync is applied; `resyncEnd` records the primary's generations and clears the journal.
final class SecondarySession {
    private let node: NodePlan
    private let units: [SecondaryUnit]
    private let logger: Logger
    /// The directory this connection is about, set by its first message.
    private var unit: SecondaryUnit!
    private var applier: ReplicaApplier!
    private var accepted = false
    private var refusalLogged = false
    private var channel: ReplicationChannel?
    /// A resync of this copy began on this connection and has not ended.
    private var resyncOpen = false

    private var plan: UnitPlan { unit.plan }
    private var state: UnitState { unit.state }
    private var copyFD: Int32 { unit.copyFD }

    /// Answers a control request forwarded by the peer's daemon (`clusterctl -H`); nil where
    /// there is no cluster daemon (`--role secondary`).
    private let peerControl: (([UInt8]) -> [UInt8])?

    init(plan: NodePlan, units: [SecondaryUnit], logger: Logger, peerControl: (([UInt8]) -> [UInt8])? = nil) {
        node = plan
        self.units = units
        self.logger = logger
        self.peerControl = peerControl
    }

    func serve(_ channel: ReplicationChannel) {
        self.channel = channel
        let receiver = ReplicationReceiver(channel: channel, logger: logger)
        defer {
            if let unit {
                unit.gate.leave(self)
                if unit.feeder.release(by: self) { unit.status.set("peer", "not connected") }
                if resyncOpen { unit.observer?(.interrupted) }
            }
        }
        do {
            try receiver.run { sequence, message in handle(sequence, message) }
            logger.info("replication connection from \(receiver.peerDescription) ended")
        } catch {
            // The receiver has logged why the stream broke.
        }
    }

    /// Binds the connection to the directory its first message names.
    private func bind(to message: Message) throws {
        let index: UInt16
        switch message {
        case .moduleStatus(let status): index = status.module
        case .verifyDirectory(let listing): index = listing.module
        case .regionChecksumsRequest(let request): index = request.module
        default: throw RefusedBeforeStatus(type: message.type)
        }
        guard let chosen = units.first(where: { $0.plan.index == index }) else { throw RefusedBeforeStatus(type: message.type) }
        applier = try ReplicaApplier(rootFD: try sys { fcntl(chosen.copyFD, F_DUPFD_CLOEXEC, 0) })
        unit = chosen
    }

    private func handle(_ sequence: UInt64, _ message: Message) -> ReplicationReceiver.ApplyResult {
        do {
            if case .controlRequest(let request) = message {
                guard let peerControl else { return .failed(errno: EOPNOTSUPP) }
                return .replied(.controlReply(ControlEnvelope(requestSequence: sequence, body: peerControl(request.body))))
            }
            if unit == nil { try bind(to: message) }
            switch message {
            case .moduleStatus where !unit.gate.admit(self, channel: channel!):
                logger.warning("module \(plan.name): not taking a stream from \(node.peerName): the module is not SECOND on this node")
                return .failed(errno: EAGAIN)
            case .moduleStatus where !unit.feeder.take(for: self):
                logger.error("module \(plan.name): refusing a second primary stream: another connection from \(node.peerName) feeds this copy")
                return .failed(errno: EBUSY)
            case .moduleStatus(let peer):
                return .replied(.moduleStatusReply(ModuleStatusReply(requestSequence: sequence, status: decide(peer))))
            case .verifyDirectory(let listing):
                return .replied(.verifyReply(VerifyReply(requestSequence: sequence, differences: compare(listing))))
            case .regionChecksumsRequest(let request):
                return .replied(try applier.answer(request, requestSequence: sequence))
            case _ where !accepted:
                if !refusalLogged {
                    logger.error("module \(plan.name): refusing \(message.type) from the primary: its copy may not replace this one (see above)")
                    refusalLogged = true
                }
                return .failed(errno: EPERM)
            case .resyncBegin:
                unit.observer?(.began)
                resyncOpen = true
                try state.generations.save(state.generations.generations.resyncStarted())
                try applier.apply(message)
                logger.info("module \(plan.name): resync from \(node.peerName) started; this copy is not up to date until it ends")
                unit.status.set("resync", "receiving from \(node.peerName) (this copy is not up to date until it ends)")
            case .resyncEnd(let end):
                try applier.apply(message)
                // Resync data is written without fsync: it must be on disk before the copy says
                // it is up to date.
                let readable = try sys { openat(copyFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
                defer { close(readable) }
                try sys { clinux_syncfs(readable) }
                try state.journal.clear()
                let adopted = DataGenerations(wire: end.generations).with(upToDate: true)
                try state.generations.save(adopted, aloneSince: 0)
                logger.info("module \(plan.name): resync from \(node.peerName) complete; this copy is up to date, generation \(adopted)")
                unit.status.set("resync", "none")
                unit.status.set("generation", "\(adopted)")
                unit.status.set("last_resync", "received from \(node.peerName), ended \(utcText(Int64(time(nil))))")
                resyncOpen = false
                unit.observer?(.ended)
            default:
                try applier.apply(message)
            }
            return .applied
        } catch {
            logger.warning("could not apply: \(error)")
            return .failed(errno: errnoCode(of: error))
        }
    }

    /// `mirror verify`: how this copy of a directory differs from the peer's listing.
    private func compare(_ listing: DirectoryManifest) -> [String] {
        let shown = listing.path.map { "\($0)/" } ?? "./"
        var fd = fcntl(copyFD, F_DUPFD_CLOEXEC, 0)
        for component in listing.path?.bytes.split(separator: UInt8(ascii: "/")) ?? [] where fd >= 0 {
            let name = component.map { CChar(bitPattern: $0) } + [0]
            let next = openat(fd, name, clinux_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(fd)
            fd = next
        }
        guard fd >= 0 else { return ["\(shown): missing on \(node.nodeName) (\(FSError.last))"] }
        defer { close(fd) }
        do {
            return try ListingComparison.differences(listing, dirFD: fd, here: node.nodeName, there: node.peerName)
        } catch {
            return ["\(shown): cannot be read on \(node.nodeName): \(error)"]
        }
    }

    /// Compares generations; accepts the stream only when this copy may receive the primary's.
    private func decide(_ peer: ModuleStatus) -> ModuleStatus {
        let (mine, truncated) = state.status(module: plan.index, serving: false, rootFD: copyFD)
        if truncated {
            logger.warning("module \(plan.name): more files may differ than one status can list (\(mine.dirty.count) named); the primary will compare everything by checksums")
        }
        let decision = compareGenerations(local: state.generations.generations, peer: DataGenerations(wire: peer.generations))
        accepted = decision.outcome.receivePlan != nil || decision.outcome == .inSync
        refusalLogged = false
        if accepted {
            logger.info("module \(plan.name): \(node.peerName) is primary (\(decision)); receiving")
            unit.status.set("peer", "receiving from \(node.peerName)")
        } else {
            logger.error("\(ConnectExplanation.refusal(decision, module: plan.name, local: (node.nodeName, mine), peer: (node.peerName, peer)))")
        }
        return mine
    }
}

/// A connection whose first message is not a status or verify request naming a known directory.
struct RefusedBeforeStatus: ErrnoCarrying, CustomStringConvertible {
    let type: MessageType
    var code: Int32 { EPROTO }
    var description: String { "\(type) before the primary's status: refused" }
}
