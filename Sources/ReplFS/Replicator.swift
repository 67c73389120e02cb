import CLinux
import Glibc
import Logging
import ReplProtocol
import ReplTransport

/// The primary's link from ReplFS to the peer: names inodes on the stream and sends each
/// change after applying it locally, then waits for the peer.
///
/// Every replicated change runs ``replicate(locking:referencing:apply:message:)``: the stream ids
/// of the inodes it names are resolved first (sending `bind` for inodes the peer does not know
/// yet, parents first), then, under the changed inode's lock, the change is applied locally and
/// its message sent; the lock is released and the peer's answer awaited. The local result is
/// what the application gets: a peer that fails the operation or is lost is logged once, and
/// from then on nothing more is sent (alone; change tracking and resync come later).
///
/// Lives in ReplFS because it keeps its state in ``Inode`` (the lock, the stream id, the last
/// name), which no other module sees.
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
    private let moduleName: String
    private let sender: ReplicationSender
    private let logger: Logger
    /// Guards the inodes' stream ids and names, the id counter and the alone flag; held while
    /// a message is handed to the sender, so a `bind` always precedes the uses of its id.
    private let namingLock = Lock()
    fileprivate var lastStreamID = NodeRef.root.id
    private var alone = false

    /// - Parameters:
    ///   - sender: the connected stream to the peer; closed by ``close()``.
    ///   - module: the module's index on the stream; `moduleName` is for log lines.
    public init(sender: ReplicationSender, module: UInt16, moduleName: String, logger: Logger) {
        self.sender = sender
        self.module = module
        self.moduleName = moduleName
        self.logger = logger
    }

    /// Ends the connection to the peer.
    public func close() { sender.close() }

    /// Gives the module's root its stream id.
    func adoptRoot(_ root: Inode) {
        namingLock.withLock { root.streamID = NodeRef.root.id }
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

    /// The id the peer knows `inode` by, binding it (and its parents) first if needed; nil when
    /// replication is off (alone) or no name leads to the inode any more (it needs no replicating:
    /// the peer never had it by that name).
    private func streamIDs(of inodes: [Inode]) -> [NodeRef]? {
        namingLock.withLock {
            guard !alone else { return nil }
            var ids: [NodeRef] = []
            for inode in inodes {
                guard let id = bind(inode) else { return nil }
                ids.append(id)
            }
            return ids
        }
    }

    /// With the naming lock held.
    private func bind(_ inode: Inode) -> NodeRef? {
        if inode.streamID != 0 { return NodeRef(inode.streamID) }
        guard let parent = inode.lastParent, let name = FileName(bytes: inode.lastName),
              stillNamed(inode, in: parent, as: name), let parentID = bind(parent) else { return nil }
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
            if !alone { _ = try? sender.send(.forget(Forget(module: module, node: id))) }
        }
    }

    // MARK: Changes

    /// Applies one change locally and replicates it; see the type's description.
    /// - Parameters:
    ///   - inode: locked while applying and sending (the parent directory for namespace changes);
    ///     nil for changes that need no ordering against others (fsync).
    ///   - inodes: the inodes the message names, in order; their ids are passed to `message`.
    ///   - apply: the local change; its error is the operation's, and nothing is sent.
    ///   - message: builds what to send from the local result and the ids; runs with the naming
    ///     lock held (see ``MessageContext``).
    @discardableResult
    func replicate<T>(locking inode: Inode?, referencing inodes: () -> [Inode], apply: () throws -> T,
                      message: (T, MessageContext) throws -> Outgoing) throws -> T {
        guard let ids = streamIDs(of: inodes()) else {
            return try inode?.changeLock.withLock(apply) ?? apply()
        }
        func applyAndSend() throws -> (T, (Ticket, String)?) {
            let result = try apply()
            return (result, try send(try message(result, MessageContext(ids: ids, replicator: self))))
        }
        let (result, sent) = try inode?.changeLock.withLock(applyAndSend) ?? applyAndSend()
        if let (ticket, what) = sent { awaitPeer(ticket, what: what) }
        return result
    }

    /// Hands one message to the stream; returns its ticket and a description for log lines.
    private func send(_ outgoing: @autoclosure () throws -> Outgoing) throws -> (Ticket, String)? {
        try namingLock.withLock {
            guard !alone else { return nil }
            switch try outgoing() {
            case .message(let message):
                return (try sender.send(message), "\(message.type)")
            case .write(let node, let offset, let data):
                return (try sender.sendWrite(module: module, node: node, offset: offset, data: data),
                        "write of \(data.count) bytes at \(offset) to \(node)")
            case .nothing:
                return nil
            }
        }
    }

    /// Waits for the peer's answer; failures are logged, never reported to the application.
    /// A peer that failed an operation holds a copy that differs from ours: like a lost peer,
    /// it gets nothing more (later operations would build on a copy that is already wrong).
    private func awaitPeer(_ ticket: Ticket, what: String) {
        switch sender.wait(for: ticket) {
        case .applied:
            break
        case .failed(let code):
            if goAlone() {
                logger.error("""
                    module \(moduleName): the peer could not apply \(what): \(FSError(code)); \
                    continuing alone: the peer's copy is now out of date
                    """)
            }
        case .peerLost:
            if goAlone() {
                logger.warning("module \(moduleName): peer lost, continuing alone: the peer's copy is now out of date")
            }
        }
    }

    /// Stops replicating; true for the caller that made the switch (it logs why, once).
    private func goAlone() -> Bool {
        namingLock.withLock { () -> Bool in
            defer { alone = true }
            return !alone
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
