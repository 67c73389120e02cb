import CLinux
import Glibc
import Logging
import ReplProtocol
import ReplTransport

/// The primary's link from ReplFS to the peer: names inodes on the stream and sends each
/// change after applying it locally, then waits for the peer; records in the journal what
/// the peer may lack.
///
/// Every replicated change runs ``replicate(locking:referencing:tracking:trackingAfter:apply:message:)``:
/// the stream ids of the inodes it names are resolved first (sending `bind` for inodes the peer
/// does not know yet, parents first), then, under the changed files' locks, the change's extent
/// is recorded in the ``RegionJournal`` (hot), the change applied locally and its message sent;
/// the locks are released and the peer's answer awaited, then the journal told whether the peer
/// has it. The local result is what the application gets.
///
/// Without a peer (none attached yet, or lost), changes are applied alone and recorded sticky,
/// for the next resync. The switch to alone runs the `onAlone` hook first (the daemon persists
/// a new data generation there), before any change is applied without the peer. A peer that
/// fails an operation holds a copy that differs: outside a resync it is dropped like a lost
/// one (the daemon reconnects and resynchronises); during a resync the files involved are
/// recorded sticky and the resync's next pass sends them.
///
/// In the cluster daemon, a change that is about to return to the application without the
/// peer's acknowledgement, once a connected peer was lost, first passes the ``AloneFence``.
///
/// Lives in ReplFS because it keeps its state in ``Inode`` (the stream id, the last name) and
/// shares the files' locks with ReplFS, which no other module sees.
public final class Replicator {
    /// What a change sends once applied locally.
    enum Outgoing {
        case message(Message)
        case write(node: NodeRef, offset: UInt64, data: UnsafeRawBufferPointer)
        /// Nothing to send (the change turned out to change nothing).
        case nothing
    }

    /// The module's index in the handshake's module list.
    let module: UInt16
    let moduleName: String
    /// What the peer may lack, on disk.
    public let journal: RegionJournal
    let logger: Logger
    private let onAlone: () throws -> Void
    /// Holds changes acknowledged without the peer until the cluster lets them go (nil: never held).
    private let fence: AloneFence?
    /// Guards the inodes' stream ids and names, the id counter, the sender and the flags; held
    /// while a message is handed to the sender, so a `bind` always precedes the uses of its id.
    private let namingLock = Lock()
    fileprivate var lastStreamID = NodeRef.root.id
    /// nil: alone.
    private var sender: ReplicationSender?
    private var resyncing = false
    /// The `onAlone` hook failed: no change may be applied (its generation is not recorded).
    private var cannotGoAlone = false
    /// The node stops serving this copy: no change is applied any more, alone or not.
    private var retired = false
    private(set) var inodes: InodeTable!

    /// Starts alone: ``attach(_:resyncing:)`` connects a peer.
    /// - Parameters:
    ///   - module: the module's index on the stream; `moduleName` is for log lines.
    ///   - fence: raised when a connected peer is lost; every change that would then return
    ///     without the peer's acknowledgement waits for it (see ``AloneFence``). Nil: none waits.
    ///   - onAlone: called when a peer is lost, before any change is applied without it; if it
    ///     throws, every later change fails with `EIO` (nothing is changed unrecorded).
    public init(module: UInt16, moduleName: String, journal: RegionJournal, logger: Logger, fence: AloneFence? = nil,
                onAlone: @escaping () throws -> Void) {
        self.module = module
        self.moduleName = moduleName
        self.journal = journal
        self.logger = logger
        self.fence = fence
        self.onAlone = onAlone
    }

    /// Called by the file system it serves.
    func adopt(_ table: InodeTable) {
        namingLock.withLock {
            inodes = table
            table.root.streamID = NodeRef.root.id
        }
    }

    /// Starts replicating to a newly connected peer. Every inode is bound anew (the peer's ids
    /// belong to the connection). With `resyncing`, failures the peer reports are expected until
    /// the resync has made its copy equal: they are recorded, not fatal.
    public func attach(_ newSender: ReplicationSender, resyncing: Bool) {
        namingLock.withLock {
            sender?.close()
            for inode in inodes?.all ?? [] { inode.streamID = 0 }
            inodes?.root.streamID = NodeRef.root.id
            lastStreamID = NodeRef.root.id
            sender = newSender
            self.resyncing = resyncing
        }
    }

    /// The resync completed: from now on a failure reported by the peer drops it.
    public func resyncCompleted() {
        namingLock.withLock { resyncing = false }
    }

    /// The connected peer's sender, if any (the resync sends on the same stream).
    public var currentSender: ReplicationSender? { namingLock.withLock { sender } }

    /// Whether the file system it replicates is mounted and serving (the resync walks it).
    public var isServing: Bool { namingLock.withLock { inodes != nil } }

    /// Whether a peer is attached.
    public var isReplicating: Bool { currentSender != nil }

    /// Drops the peer (logged by the caller); changes go on alone.
    public func detach(because reason: String) {
        if goAlone(from: nil) { logger.warning("module \(moduleName): \(reason); continuing alone") }
    }

    /// Ends the connection to the peer, if any.
    public func close() { namingLock.withLock { sender?.close() } }

    /// The node stops serving this copy (the cluster moves the service away): the peer is let
    /// go without starting a generation of its own, and every later change is refused (EROFS),
    /// so nothing is written here that the node taking over would not have.
    public func retire() {
        namingLock.withLock {
            retired = true
            sender?.close()
            sender = nil
        }
        fence?.refuse()
    }

    // MARK: Names

    /// Records the entry under which the kernel found `inode` (lookup, create, link).
    func noteName(of inode: Inode, parent: Inode, name: UnsafePointer<CChar>) {
        let bytes = Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
        namingLock.withLock {
            inode.lastParent = parent
            inode.lastName = bytes
        }
    }

    /// The ids the peer knows `inodes` by, binding them (and their parents) first if needed; nil
    /// when alone, or when a file no name leads to any more (unlinked: the peer's copy loses it
    /// too, so there is nothing to replicate). A file that still has a name but could not be
    /// named (its entry renamed by a change not yet handed to the stream, or known only by a hard
    /// link the kernel never looked up) is tried again once the naming lock was released; if it
    /// still cannot be named, the peer is dropped: the change is journaled and the resync at
    /// reconnection sends it, rather than the peer silently missing it.
    ///
    /// Alone, the change first passes the fence; if it had to wait there, a peer may have been
    /// attached meanwhile (a resync): the ids are resolved again.
    private func streamIDs(of inodes: [Inode]) throws -> (ReplicationSender, [NodeRef])? {
        while true {
            if let named = try resolveStreamIDs(of: inodes) { return named }
            if try fence?.pass() != true { return nil }
        }
    }

    /// ``streamIDs(of:)`` without the fence: nil when alone or when the files cannot be named.
    private func resolveStreamIDs(of inodes: [Inode]) throws -> (ReplicationSender, [NodeRef])? {
        for attempt in 0..<3 {
            let outcome = try namingLock.withLock { () -> Naming in
                if cannotGoAlone { throw FSError(EIO) }
                if retired { throw FSError(EROFS) }
                guard let sender else { return .alone }
                var ids: [NodeRef] = []
                for inode in inodes {
                    guard let id = bind(inode, on: sender) else { return hasName(inode) ? .unnamed(inode) : .alone }
                    ids.append(id)
                }
                return .named(sender, ids)
            }
            switch outcome {
            case .named(let sender, let ids): return (sender, ids)
            case .alone: return nil
            case .unnamed(let inode):
                if attempt < 2 {
                    usleep(200)
                    continue
                }
                detach(because: "a changed file (inode \(inode.key.ino)) could not be named to the peer")
            }
        }
        return nil
    }

    /// What resolving the stream ids gave.
    private enum Naming {
        case named(ReplicationSender, [NodeRef])
        case alone
        /// This inode still has a name here but none the peer could be told.
        case unnamed(Inode)
    }

    /// Whether the file still has at least one name (hard links count).
    private func hasName(_ inode: Inode) -> Bool {
        var st = stat()
        guard fstatat(inode.fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 else { return false }
        return st.st_nlink > 0
    }

    /// With the naming lock held.
    private func bind(_ inode: Inode, on sender: ReplicationSender) -> NodeRef? {
        if inode.streamID != 0 { return NodeRef(inode.streamID) }
        guard let parent = inode.lastParent, let name = FileName(bytes: inode.lastName),
              stillNamed(inode, in: parent, as: name), let parentID = bind(parent, on: sender) else { return nil }
        let id = NodeRef(lastStreamID + 1)
        do {
            _ = try sender.send(.bind(Bind(module: module, node: id, parent: parentID, name: name)))
        } catch {
            return nil
        }
        lastStreamID += 1
        inode.streamID = id.id
        return id
    }

    /// Whether `name` in `parent` is still `inode` here (an unlinked or replaced entry is not).
    private func stillNamed(_ inode: Inode, in parent: Inode, as name: FileName) -> Bool {
        var st = stat()
        let cString = name.bytes.map { CChar(bitPattern: $0) } + [0]
        guard fstatat(parent.fd, cString, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return false }
        return InodeKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino)) == inode.key
    }

    /// The kernel forgot `inode`: the peer closes what it holds for it.
    func forget(_ inode: Inode) {
        namingLock.withLock {
            guard inode.streamID != 0 else { return }
            let id = NodeRef(inode.streamID)
            inode.streamID = 0
            inode.lastParent = nil
            if let sender { _ = try? sender.send(.forget(Forget(module: module, node: id))) }
        }
    }

    // MARK: Changes

    /// Applies one change locally and replicates it; see the type's description.
    /// - Parameters:
    ///   - locking: the files whose locks are held while applying and sending (the parent
    ///     directories for namespace changes); empty for changes that need no ordering (fsync).
    ///   - referencing: the inodes the message names, in order; their ids are passed to `message`.
    ///   - tracking: what the change touches, recorded in the journal before it is applied.
    ///   - trackingAfter: what a change applied alone touches that is known only once applied
    ///     (the inode a create made).
    ///   - apply: the local change; its error is the operation's, and nothing is sent.
    ///   - message: builds what to send from the local result and the ids; runs with the naming
    ///     lock held (see ``MessageContext``).
    @discardableResult
    func replicate<T>(locking: [Inode], referencing inodes: () -> [Inode], tracking: () -> ChangeExtent,
                      trackingAfter: ((T) -> ChangeExtent)?, apply: () throws -> T,
                      message: (T, MessageContext) throws -> Outgoing) throws -> T {
        let locks = self.inodes.changeLocks
        let lockedInos = locking.map(\.key.ino)
        guard let (sender, ids) = try streamIDs(of: inodes()) else {
            return try locks.withLocks(for: lockedInos) {
                _ = try journal.willChange(tracking(), alone: true)
                let result = try apply()
                if let trackingAfter { try journal.markSticky(trackingAfter(result)) }
                return result
            }
        }
        let (result, mark, sent) = try locks.withLocks(for: lockedInos) { () -> (T, JournalMark, Sending) in
            let mark = try journal.willChange(tracking(), alone: false)
            let result: T
            do {
                result = try apply()
            } catch {
                journal.settle(mark, replicated: true)
                throw error
            }
            let sent = send(try message(result, MessageContext(ids: ids, replicator: self)), on: sender)
            return (result, mark, sent)
        }
        switch sent {
        case .nothingToSend:
            journal.settle(mark, replicated: true)
        case .notSent:
            journal.settle(mark, replicated: false)
            if let trackingAfter { try? journal.markSticky(trackingAfter(result)) }
            try fence?.pass()
        case .sent(let ticket, let what):
            let applied = awaitPeer(ticket, on: sender, what: what, involving: locking + inodes())
            journal.settle(mark, replicated: applied)
            if !applied { try fence?.pass() }
        }
        return result
    }

    /// A write at a known offset, sent to the peer first and then applied locally while the
    /// peer applies it (as DRBD submits both at once): the latency is the larger of the two
    /// rather than their sum. Both happen under the file's lock, so the stream order is still
    /// the local order. If the local write fails or is short after the peer got it, the peer
    /// may hold bytes this copy does not: it is dropped and the resync at reconnection makes it
    /// equal again; the application gets the local result.
    func replicateWrite(_ inode: Inode, offset: UInt64, data: UnsafeRawBufferPointer, apply: () throws -> Int) throws -> Int {
        let extent = ChangeExtent.bytes(ino: inode.key.ino, offset: offset, length: UInt64(data.count))
        let locks = self.inodes.changeLocks
        guard let (sender, ids) = try streamIDs(of: [inode]) else {
            return try locks.withLock(for: inode.key.ino) {
                _ = try journal.willChange(extent, alone: true)
                return try apply()
            }
        }
        let (mark, sent, written) = try locks.withLock(for: inode.key.ino) { () -> (JournalMark, Sending, Result<Int, Error>) in
            let mark = try journal.willChange(extent, alone: false)
            let sent = send(.write(node: ids[0], offset: offset, data: data), on: sender)
            return (mark, sent, Result { try apply() })
        }
        var replicated = false
        switch sent {
        case .sent(let ticket, let what): replicated = awaitPeer(ticket, on: sender, what: what, involving: [inode])
        case .nothingToSend: replicated = true
        case .notSent: replicated = false
        }
        if case .success(let count) = written, count == data.count {
            journal.settle(mark, replicated: replicated)
            if !replicated { try fence?.pass() }
            return count
        }
        journal.settle(mark, replicated: false)
        if case .sent = sent {
            let what = (try? written.get()).map { "wrote \($0) of \(data.count) bytes" } ?? "\(written)"
            detach(because: "a local write to inode \(inode.key.ino) failed after the peer got it (\(what))")
        }
        return try written.get()
    }

    /// Replicates a change that needs no ordering against others and whose local part may run
    /// while the peer does its own (fsync): the message is sent first, the local part runs
    /// meanwhile, and the call returns once both are done, so the latency is the larger of the
    /// two rather than their sum.
    func replicateOverlapping<T>(referencing inodes: () -> [Inode], apply: () throws -> T,
                                 message: (MessageContext) throws -> Outgoing) throws -> T {
        guard let (sender, ids) = try streamIDs(of: inodes()) else { return try apply() }
        let sent = send(try message(MessageContext(ids: ids, replicator: self)), on: sender)
        let result = Result { try apply() }
        switch sent {
        case .sent(let ticket, let what):
            if !awaitPeer(ticket, on: sender, what: what, involving: inodes()) { try fence?.pass() }
        case .notSent:
            try fence?.pass()
        case .nothingToSend:
            break
        }
        return try result.get()
    }

    /// What became of a change's message.
    private enum Sending {
        case sent(Ticket, String)
        case nothingToSend
        /// The peer was dropped meanwhile: the change is the journal's to remember.
        case notSent
    }

    /// Hands one message to the stream, unless the peer was dropped since the ids were resolved.
    private func send(_ outgoing: @autoclosure () throws -> Outgoing, on expected: ReplicationSender) -> Sending {
        namingLock.withLock {
            guard let sender, sender === expected else { return .notSent }
            do {
                switch try outgoing() {
                case .message(let message):
                    return .sent(try sender.send(message), "\(message.type)")
                case .write(let node, let offset, let data):
                    return .sent(try sender.sendWrite(module: module, node: node, offset: offset, data: data),
                                 "write of \(data.count) bytes at \(offset) to \(node)")
                case .nothing:
                    return .nothingToSend
                }
            } catch {
                logger.error("module \(moduleName): cannot send a change: \(error)")
                return .notSent
            }
        }
    }

    /// Waits for the peer's answer; returns whether it applied the change. Failures are never
    /// reported to the application (its change is applied here and recorded).
    private func awaitPeer(_ ticket: Ticket, on sender: ReplicationSender, what: String, involving files: [Inode]) -> Bool {
        switch sender.wait(for: ticket) {
        case .applied:
            return true
        case .failed(let code):
            let duringResync = namingLock.withLock { () -> Bool in
                guard resyncing, self.sender === sender else { return false }
                // The resync's next pass sends these files; their names are bound anew.
                for inode in files where inode !== inodes.root { inode.streamID = 0 }
                return true
            }
            if duringResync {
                try? journal.markSticky(.whole(files.map(\.key.ino)))
                return true
            }
            if goAlone(from: sender) {
                logger.error("""
                    module \(moduleName): the peer could not apply \(what): \(FSError(code)); \
                    continuing alone: the peer's copy is now out of date until it is resynchronised
                    """)
            }
            return false
        case .peerLost:
            if goAlone(from: sender) {
                logger.warning("module \(moduleName): peer lost (\(sender.lossReason ?? "unknown reason")), continuing alone: the peer's copy is now out of date")
            }
            return false
        }
    }

    /// Stops replicating to `lost` (nil: whoever is attached); true for the caller that made the
    /// switch (it logs why, once). Runs the `onAlone` hook before anything is applied alone.
    private func goAlone(from lost: ReplicationSender?) -> Bool {
        namingLock.withLock { () -> Bool in
            guard let current = sender, lost == nil || current === lost else { return false }
            current.close()
            sender = nil
            fence?.raise()
            resyncing = false
            do {
                try onAlone()
            } catch {
                cannotGoAlone = true
                logger.critical("module \(moduleName): cannot record that this node serves alone (\(error)); refusing every change")
            }
            return true
        }
    }
}

/// What a change's message is built with, while the replicator's naming lock is held: the ids of
/// the inodes the change names, the module, and the naming changes the message makes.
struct MessageContext {
    /// The stream ids of the inodes passed as `referencing`, in the same order.
    let ids: [NodeRef]
    fileprivate let replicator: Replicator

    var module: UInt16 { replicator.module }

    /// Gives a new inode (create, mkdir, mknod, symlink) its id, carried by the creating message.
    func newID(for inode: Inode) -> NodeRef {
        replicator.lastStreamID += 1
        inode.streamID = replicator.lastStreamID
        return NodeRef(replicator.lastStreamID)
    }

    /// Records that `inode` is now the entry `name` of `parent` (rename).
    func renamed(_ inode: Inode?, to parent: Inode, as name: FileName) {
        guard let inode else { return }
        inode.lastParent = parent
        inode.lastName = name.bytes
    }
}

/// A name the kernel sent, as the stream carries it.
func fileName(_ name: UnsafePointer<CChar>) throws -> FileName {
    guard let valid = FileName(bytes: UnsafeRawBufferPointer(start: name, count: strlen(name))) else {
        throw FSError(ENAMETOOLONG)
    }
    return valid
}

/// An extended attribute's name the kernel sent, as the stream carries it.
func xattrName(_ name: UnsafePointer<CChar>) throws -> XattrName {
    guard let valid = XattrName(bytes: UnsafeRawBufferPointer(start: name, count: strlen(name))) else {
        throw FSError(ERANGE)
    }
    return valid
}

extension Timestamp {
    /// A time as the local file carries it.
    init(_ time: timespec) {
        self.init(seconds: Int64(time.tv_sec), nanoseconds: UInt32(time.tv_nsec))
    }
}
