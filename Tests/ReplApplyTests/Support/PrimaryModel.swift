import CLinux
import Foundation
import Glibc
import ReplProtocol
import TestSupport

/// What the primary did for one operation: binds for names it had not looked up before, then
/// the operation's message if it replicates one, and the errno its own system call gave.
struct PrimaryStep {
    var binds: [Message] = []
    var operation: Message?
    /// 0 when the primary's call succeeded.
    var errno: Int32 = 0
}

/// Plays the primary: carries out operations on its directory with direct system calls relative
/// to descriptors it holds (as ReplFS does), and says which messages it replicates for them.
///
/// Namespace operations and attribute changes replicate even when they fail, so the replica's
/// errno can be compared; writes, truncation, fallocate and fsync replicate only on success,
/// as they reach ReplFS only through a descriptor the application could open. Node ids are
/// given per inode, on first lookup (`bind`) or creation; the model holds an `O_PATH`
/// descriptor per id, so an inode number is never reused while its id is known.
final class PrimaryModel {
    let root: String
    let module: UInt16 = 0
    private var descriptors: [UInt64: Int32] = [:]
    private var idsByInode: [InodeKey: NodeRef] = [:]
    private var nextID: UInt64 = 2

    private struct InodeKey: Hashable {
        let dev: UInt64
        let ino: UInt64
    }

    /// A failed direct call.
    private struct Failure: Error { let errno: Int32 }

    init(root: String) throws {
        self.root = root
        let fd = open(root, clinux_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw TestFailure("open \(root): \(String(cString: strerror(errno)))") }
        descriptors[NodeRef.root.id] = fd
        idsByInode[try Self.key(fd)] = .root
    }

    deinit { descriptors.values.forEach { close($0) } }

    /// Ids the primary knows now, the root excluded, in creation order.
    var knownNodes: [NodeRef] { descriptors.keys.filter { $0 != NodeRef.root.id }.sorted().map(NodeRef.init) }

    /// `forget` for every known node but the root.
    func forgetAll() -> [Message] {
        knownNodes.map { forget($0) }
    }

    /// Carries out `operation`. When the primary cannot even name its target (a missing or
    /// non-directory parent), nothing changes and nothing replicates but the binds of the
    /// lookups made on the way.
    func perform(_ operation: Operation) -> PrimaryStep {
        var step = PrimaryStep()
        do {
            step.operation = try perform(operation, binds: &step.binds, errno: &step.errno)
        } catch {
            step.operation = nil
        }
        return step
    }

    private func perform(_ operation: Operation, binds: inout [Message], errno code: inout Int32) throws -> Message? {
        switch operation {
        case .create(let path, let mode, let uid, let gid, let exclusive):
            let (dir, name) = try parent(of: path, binds: &binds)
            var st = stat()
            if !exclusive, fstatat(descriptor(dir), name.string, &st, AT_SYMLINK_NOFOLLOW) == 0 { return nil }
            let node = newID()
            code = call {
                let fd = openat(descriptor(dir), name.string, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode)
                if fd >= 0 { close(fd) }
                return fd
            }
            try settle(node, name, in: dir, uid: uid, gid: gid, mode: mode, code: code)
            return .create(Create(module: module, parent: dir, name: name.wire, node: node, mode: UInt32(mode),
                                  uid: uid, gid: gid, flags: UInt32(O_CREAT | O_WRONLY | (exclusive ? O_EXCL : 0))))
        case .mkdir(let path, let mode, let uid, let gid):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = newID()
            code = call { mkdirat(descriptor(dir), name.string, mode) }
            try settle(node, name, in: dir, uid: uid, gid: gid, mode: mode, code: code)
            return .mkdir(Mkdir(module: module, parent: dir, name: name.wire, node: node, mode: UInt32(mode), uid: uid, gid: gid))
        case .mknod(let path, let mode, let rdev):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = newID()
            code = call { mknodat(descriptor(dir), name.string, mode, rdev) }
            try settle(node, name, in: dir, uid: 0, gid: 0, mode: mode, code: code)
            return .mknod(Mknod(module: module, parent: dir, name: name.wire, node: node, mode: UInt32(mode),
                                rdev: UInt64(rdev), uid: 0, gid: 0))
        case .symlink(let target, let path, let uid, let gid):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = newID()
            code = call { symlinkat(target, descriptor(dir), name.string) }
            try settle(node, name, in: dir, uid: uid, gid: gid, mode: nil, code: code)
            return .symlink(Symlink(module: module, parent: dir, name: name.wire, node: node,
                                    target: SymlinkTarget(target)!, uid: uid, gid: gid))
        case .link(let source, let destination):
            let (sourceDir, sourceName) = try parent(of: source, binds: &binds)
            let node = try lookup(sourceName, in: sourceDir, binds: &binds)
            let (dir, name) = try parent(of: destination, binds: &binds)
            code = call { linkat(descriptor(sourceDir), sourceName.string, descriptor(dir), name.string, 0) }
            return .link(Link(module: module, node: node, newParent: dir, newName: name.wire))
        case .unlink(let path):
            let (dir, name) = try parent(of: path, binds: &binds)
            code = call { unlinkat(descriptor(dir), name.string, 0) }
            return .unlink(RemoveEntry(module: module, parent: dir, name: name.wire))
        case .rmdir(let path):
            let (dir, name) = try parent(of: path, binds: &binds)
            code = call { unlinkat(descriptor(dir), name.string, AT_REMOVEDIR) }
            return .rmdir(RemoveEntry(module: module, parent: dir, name: name.wire))
        case .rename(let source, let destination, let flags):
            let (dir, name) = try parent(of: source, binds: &binds)
            let (newDir, newName) = try parent(of: destination, binds: &binds)
            code = call { clinux_renameat2(descriptor(dir), name.string, descriptor(newDir), newName.string, flags) }
            return .rename(Rename(module: module, parent: dir, name: name.wire, newParent: newDir, newName: newName.wire, flags: flags))
        case .write(let path, let offset, let length, let seed):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = try lookup(name, in: dir, binds: &binds)
            let data = pattern(length, seed: seed)
            code = withOpenFile(name, in: dir, O_WRONLY) { fd in
                data.withUnsafeBytes { pwrite(fd, $0.baseAddress, length, off_t(offset)) == length ? 0 : -1 }
            }
            return code == 0 ? .write(Write(module: module, node: node, offset: UInt64(offset), data: data[...])) : nil
        case .writeOpenFile(let index, let offset, let length, let seed):
            let files = knownNodes.filter { Self.type(descriptor($0)) == S_IFREG }
            guard !files.isEmpty else { return nil }
            let node = files[index % files.count]
            let data = pattern(length, seed: seed)
            code = call {
                let fd = open("/proc/self/fd/\(descriptor(node))", O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else { return -1 }
                defer { close(fd) }
                return data.withUnsafeBytes { pwrite(fd, $0.baseAddress, length, off_t(offset)) == length ? 0 : -1 }
            }
            return code == 0 ? .write(Write(module: module, node: node, offset: UInt64(offset), data: data[...])) : nil
        case .truncate(let path, let size):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = try lookup(name, in: dir, binds: &binds)
            code = withOpenFile(name, in: dir, O_WRONLY) { ftruncate($0, off_t(size)) }
            return code == 0 ? .setAttributes(SetAttributes(module: module, node: node, size: UInt64(size))) : nil
        case .chmod(let path, let mode):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = try lookup(name, in: dir, binds: &binds)
            if Self.type(descriptor(node)) == S_IFLNK { return nil }
            code = call { fchmodat(descriptor(dir), name.string, mode, 0) }
            return .setAttributes(SetAttributes(module: module, node: node, mode: UInt32(mode)))
        case .chown(let path, let uid, let gid):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = try lookup(name, in: dir, binds: &binds)
            code = call { fchownat(descriptor(dir), name.string, uid, gid, AT_SYMLINK_NOFOLLOW) }
            return .setAttributes(SetAttributes(module: module, node: node, uid: uid, gid: gid))
        case .utimens(let path, let atime, let mtime):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = try lookup(name, in: dir, binds: &binds)
            var times = [timespec(atime), timespec(mtime)]
            code = call { utimensat(descriptor(dir), name.string, &times, AT_SYMLINK_NOFOLLOW) }
            return .setAttributes(SetAttributes(module: module, node: node, accessTime: TimeChange(atime), modificationTime: TimeChange(mtime)))
        case .setxattr(let path, let attribute, let value, let flags):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = try lookup(name, in: dir, binds: &binds)
            code = call { lsetxattr(root + "/" + path, attribute, value, value.utf8.count, flags) }
            return .setXattr(SetXattr(module: module, node: node, name: XattrName(attribute)!, value: Array(value.utf8), flags: UInt32(flags)))
        case .removexattr(let path, let attribute):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = try lookup(name, in: dir, binds: &binds)
            code = call { lremovexattr(root + "/" + path, attribute) }
            return .removeXattr(RemoveXattr(module: module, node: node, name: XattrName(attribute)!))
        case .fallocate(let path, let mode, let offset, let length):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = try lookup(name, in: dir, binds: &binds)
            code = withOpenFile(name, in: dir, O_WRONLY) { clinux_fallocate($0, mode, Int64(offset), Int64(length)) }
            return code == 0 ? .fallocate(Fallocate(module: module, node: node, mode: UInt32(bitPattern: mode),
                                                    offset: UInt64(offset), length: UInt64(length))) : nil
        case .fsync(let path, let dataOnly):
            let (dir, name) = try parent(of: path, binds: &binds)
            let node = try lookup(name, in: dir, binds: &binds)
            code = withOpenFile(name, in: dir, O_RDONLY) { dataOnly ? fdatasync($0) : Glibc.fsync($0) }
            return code == 0 ? .fsync(Fsync(module: module, node: node, dataOnly: dataOnly)) : nil
        case .forget(let index):
            let nodes = knownNodes
            guard !nodes.isEmpty else { return nil }
            return forget(nodes[index % nodes.count])
        }
    }

    // MARK: Ids and descriptors

    private func descriptor(_ node: NodeRef) -> Int32 { descriptors[node.id]! }

    private func newID() -> NodeRef {
        defer { nextID += 1 }
        return NodeRef(nextID)
    }

    private func forget(_ node: NodeRef) -> Message {
        if let fd = descriptors.removeValue(forKey: node.id) {
            idsByInode = idsByInode.filter { $0.value != node }
            close(fd)
        }
        return .forget(Forget(module: module, node: node))
    }

    /// The directory holding the last component of `path`, looked up from the root.
    private func parent(of path: String, binds: inout [Message]) throws -> (NodeRef, Name) {
        var components = path.split(separator: "/").map { Name(String($0)) }
        let last = components.removeLast()
        var dir = NodeRef.root
        for component in components { dir = try lookup(component, in: dir, binds: &binds) }
        guard Self.type(descriptor(dir)) == S_IFDIR else { throw Failure(errno: ENOTDIR) }
        return (dir, last)
    }

    /// The id of `name` in `dir`: known by its inode, or new and bound (as a FUSE lookup).
    private func lookup(_ name: Name, in dir: NodeRef, binds: inout [Message]) throws -> NodeRef {
        let fd = openat(descriptor(dir), name.string, clinux_O_PATH | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(errno: Glibc.errno) }
        let key = try Self.key(fd)
        if let known = idsByInode[key] {
            close(fd)
            return known
        }
        let node = newID()
        descriptors[node.id] = fd
        idsByInode[key] = node
        binds.append(.bind(Bind(module: module, node: node, parent: dir, name: name.wire)))
        return node
    }

    /// After a successful creation: the owner and exact mode the primary gives new entries
    /// (a directory keeps an inherited set-group-ID bit), and the new id remembered.
    private func settle(_ node: NodeRef, _ name: Name, in dir: NodeRef, uid: uid_t, gid: gid_t, mode: mode_t?, code: Int32) throws {
        guard code == 0 else { return }
        let dirFD = descriptor(dir)
        guard fchownat(dirFD, name.string, uid, gid, AT_SYMLINK_NOFOLLOW) == 0 else { throw TestFailure("chown \(name.string)") }
        if let mode {
            var st = stat()
            fstatat(dirFD, name.string, &st, AT_SYMLINK_NOFOLLOW)
            let wanted = (mode & 0o7777) | (st.st_mode & S_IFMT == S_IFDIR ? st.st_mode & S_ISGID : 0)
            guard fchmodat(dirFD, name.string, wanted, 0) == 0 else { throw TestFailure("chmod \(name.string)") }
        }
        let fd = openat(dirFD, name.string, clinux_O_PATH | O_NOFOLLOW | O_CLOEXEC)
        descriptors[node.id] = fd
        idsByInode[try Self.key(fd)] = node
    }

    // MARK: System call helpers

    private func call(_ body: () -> Int32) -> Int32 {
        body() < 0 ? Glibc.errno : 0
    }

    /// Opens `name` as an application would (not following a final symlink, not blocking on a FIFO).
    private func withOpenFile(_ name: Name, in dir: NodeRef, _ flags: Int32, _ body: (Int32) -> Int32) -> Int32 {
        let fd = openat(descriptor(dir), name.string, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return Glibc.errno }
        defer { close(fd) }
        return body(fd) < 0 ? Glibc.errno : 0
    }

    private static func key(_ fd: Int32) throws -> InodeKey {
        var st = stat()
        guard fstatat(fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 else { throw Failure(errno: errno) }
        return InodeKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }

    private static func type(_ fd: Int32) -> mode_t {
        var st = stat()
        fstatat(fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)
        return st.st_mode & S_IFMT
    }
}

/// One path component, as a C string for direct calls and as the protocol's name.
struct Name {
    let string: String
    init(_ string: String) { self.string = string }
    var wire: FileName { FileName(string)! }
}

extension timespec {
    /// A test time in whole seconds plus a fixed fraction, or `UTIME_OMIT`.
    init(_ seconds: Int?) {
        if let seconds {
            self.init(tv_sec: seconds, tv_nsec: 123_000_000)
        } else {
            self.init(tv_sec: 0, tv_nsec: clinux_UTIME_OMIT)
        }
    }
}

extension TimeChange {
    /// The protocol's form of ``timespec/init(_:)``.
    init(_ seconds: Int?) {
        if let seconds {
            self = .set(Timestamp(seconds: Int64(seconds), nanoseconds: 123_000_000))
        } else {
            self = .omit
        }
    }
}
