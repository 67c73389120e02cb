import Glibc
import ReplFS
import ReplProtocol

/// The secondary's applier: carries out, on this node's copy of one module, each operation the
/// primary replicated, with the same system calls the primary's ReplFS made.
///
/// Files are known by the primary's node ids (``NodeRef``): each bound id holds an
/// `O_PATH | O_NOFOLLOW` descriptor of this copy's file, so writes to a file renamed or unlinked
/// since it was opened still reach that inode, as on the primary. Regular files written to also
/// keep a writable descriptor, up to `maximumOpenFiles` of them (least recently used closed first).
///
/// A resync names files by path from the module's root, walked without following symbolic
/// links, interleaved with the live operations: directory listings make each directory hold
/// exactly the source's entries (unbinding the ids of files they remove or replace), regions
/// and times follow, and ``answer(_:requestSequence:)`` replies to checksum requests.
///
/// Not thread-safe: operations are applied one at a time, in stream order.
public final class ReplicaApplier {
    let nodes: NodeTable
    let writableFiles: WritableDescriptors
    /// What the resync in progress (if any) remembers between its messages.
    var resync = ResyncSession()

    /// - Parameters:
    ///   - rootFD: an `O_PATH` (or readable) descriptor of the module's directory, opened before
    ///     anything is mounted over it; owned by the applier from now on, bound as ``NodeRef/root``.
    ///   - maximumOpenFiles: most writable descriptors kept open between writes.
    public init(rootFD: Int32, maximumOpenFiles: Int = 256) throws {
        do {
            nodes = try NodeTable(rootFD: rootFD)
        } catch {
            close(rootFD)
            throw ApplyError(error, operation: "open the module directory")
        }
        writableFiles = WritableDescriptors(capacity: maximumOpenFiles)
    }

    /// Node ids bound now, the root included.
    public var boundNodeCount: Int { nodes.count }

    /// Writable descriptors open now (at most `maximumOpenFiles`).
    public var openWritableFileCount: Int { writableFiles.count }

    /// Applies one operation message; throws ``ApplyError`` with the errno to report in a `nack`.
    ///
    /// The message's module index is not looked at: one applier serves one module, and the
    /// caller routes messages to it. Resync messages (`resyncBegin`, `resyncDirectory`,
    /// `resyncRegion`, `resyncFile`, `resyncEnd`) are applied like operations, in stream order.
    /// Messages that are not operations (handshake, acks, module status, checksum and verify requests,
    /// which ``answer(_:requestSequence:)`` replies to, and replies) are refused with `EINVAL`.
    public func apply(_ message: Message) throws {
        do {
            try perform(message)
        } catch {
            throw ApplyError(error, operation: Self.summary(of: message))
        }
    }

    private func perform(_ message: Message) throws {
        switch message {
        case .bind(let bind): try apply(bind)
        case .forget(let forget): try apply(forget)
        case .create(let create): try apply(create)
        case .mknod(let mknod): try apply(mknod)
        case .mkdir(let mkdir): try apply(mkdir)
        case .symlink(let symlink): try apply(symlink)
        case .link(let link): try apply(link)
        case .unlink(let removal): try remove(removal, flags: 0)
        case .rmdir(let removal): try remove(removal, flags: AT_REMOVEDIR)
        case .rename(let rename): try apply(rename)
        case .write(let write): try apply(write)
        case .fallocate(let fallocate): try apply(fallocate)
        case .fsync(let fsync): try apply(fsync)
        case .resyncRegion(let region): try apply(region)
        case .setAttributes(let attributes): try apply(attributes)
        case .setXattr(let setXattr): try apply(setXattr)
        case .removeXattr(let removeXattr): try apply(removeXattr)
        case .resyncBegin(let begin): apply(begin)
        case .resyncDirectory(let manifest): try apply(manifest)
        case .resyncFile(let file): try apply(file)
        case .resyncEnd(let end): try apply(end)
        case .regionChecksumsRequest:
            throw RefusedOperation(code: EINVAL, explanation: "regionChecksumsRequest is a request, answered (answer(_:requestSequence:)), not applied")
        case .hello, .helloReply, .proof, .accept, .refuse, .ack, .nack, .ping, .pong,
             .regionChecksumsReply, .moduleStatus, .moduleStatusReply, .verifyDirectory, .verifyReply, .controlRequest, .controlReply:
            throw RefusedOperation(code: EINVAL, explanation: "\(message.type) is not an operation to apply")
        }
    }

    /// The message kind and the nodes or names it is about, for error descriptions.
    static func summary(of message: Message) -> String {
        switch message {
        case .bind(let m): return "bind \(m.node) to '\(m.name)' in \(m.parent)"
        case .forget(let m): return "forget \(m.node)"
        case .create(let m): return "create '\(m.name)' in \(m.parent) as \(m.node)"
        case .mknod(let m): return "mknod '\(m.name)' in \(m.parent) as \(m.node)"
        case .mkdir(let m): return "mkdir '\(m.name)' in \(m.parent) as \(m.node)"
        case .symlink(let m): return "symlink '\(m.name)' in \(m.parent) as \(m.node)"
        case .link(let m): return "link \(m.node) as '\(m.newName)' in \(m.newParent)"
        case .unlink(let m): return "unlink '\(m.name)' in \(m.parent)"
        case .rmdir(let m): return "rmdir '\(m.name)' in \(m.parent)"
        case .rename(let m): return "rename '\(m.name)' in \(m.parent) to '\(m.newName)' in \(m.newParent) (flags \(m.flags))"
        case .write(let m): return "write \(m.data.count) bytes at \(m.offset) of \(m.node)"
        case .fallocate(let m): return "fallocate \(m.node) (mode \(m.mode), \(m.offset)+\(m.length))"
        case .fsync(let m): return "\(m.dataOnly ? "fdatasync" : "fsync") \(m.node)"
        case .resyncRegion(let m): return "resync \(m.data.count) bytes at \(m.offset) of \(m.target)"
        case .setAttributes(let m): return "set attributes of \(m.node)"
        case .setXattr(let m): return "set xattr '\(String(decoding: m.name.bytes, as: UTF8.self))' of \(m.node)"
        case .removeXattr(let m): return "remove xattr '\(String(decoding: m.name.bytes, as: UTF8.self))' of \(m.node)"
        case .resyncBegin(let m): return "resync begin (\(m.method))"
        case .resyncDirectory(let m):
            return "resync directory \(m.path.map { "'\($0)'" } ?? "(module root)") part \(m.part)\(m.isLast ? " (last)" : ""), \(m.entries.count) entries"
        case .resyncFile(let m): return "resync attributes of '\(m.path)'"
        case .resyncEnd: return "resync end"
        default: return "\(message.type)"
        }
    }
}
