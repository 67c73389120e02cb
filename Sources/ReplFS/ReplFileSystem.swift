import CFuse3
import CLinux
import Glibc
import ReplProtocol

/// Who asked for an operation: new files belong to this user and group, as on a plain directory.
public struct Caller: Equatable {
    public let uid: uid_t
    public let gid: gid_t

    public init(uid: uid_t, gid: gid_t) {
        self.uid = uid
        self.gid = gid
    }

    var isRoot: Bool { uid == 0 && gid == 0 }
}

/// Tunables of a mounted ReplFS.
public struct ReplFSOptions {
    /// How long the kernel may cache names and attributes (seconds). Safe above zero on the node
    /// that serves: every change passes through ReplFS.
    public var cacheTimeout: Double = 1.0
    /// Splice read replies from the backing files into /dev/fuse instead of copying them.
    public var splice = true
    /// Keep a file's page cache across opens.
    public var keepCache = true
    /// Mount read-only: applications get `EROFS` for every change (the secondary's copy).
    public var readOnly = false

    public init() {}

    /// The secondary's mount: read-only, and nothing cached that replication could make stale
    /// (zero attribute/entry timeouts; pages dropped when a file's size or mtime changed), so
    /// readers see each replicated change at once.
    public static var replica: ReplFSOptions {
        var options = ReplFSOptions()
        options.readOnly = true
        options.cacheTimeout = 0
        options.keepCache = false
        return options
    }
}

/// The filesystem: every operation is carried out on the backing directory through descriptors
/// opened before the mount, so ReplFS can be mounted over that very directory.
///
/// Methods take and return Swift values and throw ``FSError``; ``FuseSession`` turns kernel
/// requests into calls here and results into replies.
public final class ReplFileSystem {
    let options: ReplFSOptions
    let inodes: InodeTable
    /// Sends every change to the peer (on the primary); nil: a plain passthrough.
    let replicator: Replicator?
    /// `/proc/self/fd`, to reopen an `O_PATH` descriptor where no `*at` call exists.
    private let procSelfFD: Int32

    /// - Parameters:
    ///   - rootFD: an `O_PATH` descriptor of the backing directory; owned from now on.
    ///   - replicator: replicates every change to the peer; nil for a plain passthrough.
    public init(rootFD: Int32, options: ReplFSOptions = ReplFSOptions(), replicator: Replicator? = nil) throws {
        self.options = options
        self.inodes = try InodeTable(rootFD: rootFD)
        self.replicator = replicator
        replicator?.adopt(inodes)
        self.procSelfFD = try sys { Glibc.open("/proc/self/fd", clinux_O_PATH | O_DIRECTORY | O_CLOEXEC) }
    }

    deinit { close(procSelfFD) }

    // MARK: Names

    func lookup(parent: fuse_ino_t, name: UnsafePointer<CChar>) throws -> fuse_entry_param {
        let dir = inodes.inode(parent)
        let fd = try sys { openat(dir.fd, name, clinux_O_PATH | O_NOFOLLOW | O_CLOEXEC) }
        var st = stat()
        do {
            try sys { fstatat(fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        } catch {
            close(fd)
            throw error
        }
        let inode = inodes.remember(fd: fd, stat: st)
        replicator?.noteName(of: inode, parent: dir, name: name)
        return entry(for: inode, stat: st)
    }

    func forget(_ node: fuse_ino_t, count: UInt64) {
        if let gone = inodes.forget(node, count: count) { replicator?.forget(gone) }
    }

    /// Applies a change locally; with a replicator, also sends `message` and waits for the peer
    /// (see ``Replicator/replicate(locking:referencing:apply:message:)``).
    @inline(__always)
    @discardableResult
    func change<T>(locking locked: [Inode], referencing inodes: @autoclosure () -> [Inode],
                   tracking: () -> ChangeExtent = { .none }, trackingAfter: ((T) -> ChangeExtent)? = nil,
                   apply: () throws -> T, message: (T, MessageContext) throws -> Replicator.Outgoing) throws -> T {
        guard let replicator else { return try apply() }
        return try replicator.replicate(locking: locked, referencing: inodes, tracking: tracking, trackingAfter: trackingAfter,
                                        apply: apply, message: message)
    }

    private func entry(for inode: Inode, stat st: stat) -> fuse_entry_param {
        var e = fuse_entry_param()
        e.ino = inodes.nodeID(inode)
        e.attr = st
        e.attr_timeout = options.cacheTimeout
        e.entry_timeout = options.cacheTimeout
        return e
    }

    func getattr(_ node: fuse_ino_t) throws -> stat {
        var st = stat()
        try sys { fstatat(inodes.inode(node).fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        return st
    }

    /// Fields of a setattr request; nil means "leave as is".
    struct AttributeChange {
        var mode: mode_t?
        var uid: uid_t?
        var gid: gid_t?
        var size: off_t?
        var atime: timespec?
        var mtime: timespec?
    }

    func setattr(_ node: fuse_ino_t, _ attributes: AttributeChange, fileHandle: Int32?) throws -> stat {
        let inode = inodes.inode(node)
        return try change(locking: [inode], referencing: [inode],
                          tracking: { attributes.size == nil ? .none : .whole([inode.key.ino]) }) {
            try setAttributes(of: inode, attributes, fileHandle: fileHandle)
            return try getattr(node)
        } message: { st, context in
            // Times as applied here, so both copies carry the same ones (truncating sets mtime too).
            .message(.setAttributes(SetAttributes(
                module: context.module, node: context.ids[0],
                mode: attributes.mode.map { _ in UInt32(st.st_mode & 0o7777) },
                uid: attributes.uid.map { _ in st.st_uid }, gid: attributes.gid.map { _ in st.st_gid },
                size: attributes.size.map { _ in UInt64(st.st_size) },
                accessTime: attributes.atime == nil ? .omit : .set(Timestamp(st.st_atim)),
                modificationTime: attributes.mtime == nil && attributes.size == nil ? .omit : .set(Timestamp(st.st_mtim)))))
        }
    }

    private func setAttributes(of inode: Inode, _ change: AttributeChange, fileHandle: Int32?) throws {
        if let mode = change.mode {
            if let fh = fileHandle {
                try sys { fchmod(fh, mode) }
            } else {
                try withProcPath(inode) { path in try sys { chmod(path, mode) } }
            }
        }
        if change.uid != nil || change.gid != nil {
            let uid = change.uid ?? uid_t.max
            let gid = change.gid ?? gid_t.max
            try sys { fchownat(inode.fd, "", uid, gid, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        }
        if let size = change.size {
            if let fh = fileHandle {
                try sys { ftruncate(fh, size) }
            } else {
                try withProcPath(inode) { path in try sys { truncate(path, size) } }
            }
        }
        if change.atime != nil || change.mtime != nil {
            let omit = timespec(tv_sec: 0, tv_nsec: clinux_UTIME_OMIT)
            var times = [change.atime ?? omit, change.mtime ?? omit]
            if let fh = fileHandle {
                try sys { futimens(fh, &times) }
            } else {
                try sys { utimensat(inode.fd, "", &times, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
            }
        }
    }

    func readlink(_ node: fuse_ino_t) throws -> [CChar] {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = try sys { Glibc.readlinkat(inodes.inode(node).fd, "", &buffer, buffer.count - 1) }
        buffer[length] = 0
        return buffer
    }

    func mknod(parent: fuse_ino_t, name: UnsafePointer<CChar>, mode: mode_t, rdev: dev_t, caller: Caller) throws -> fuse_entry_param {
        let dir = inodes.inode(parent)
        return try change(locking: [dir], referencing: [dir], trackingAfter: { .whole([UInt64($0.attr.st_ino)]) }) {
            try sys { mknodat(dir.fd, name, mode, rdev) }
            try giveOwnership(dir: dir, name: name, to: caller, mode: mode)
            return try lookup(parent: parent, name: name)
        } message: { entry, context in
            .message(.mknod(Mknod(module: context.module, parent: context.ids[0], name: try fileName(name),
                                  node: context.newID(for: inodes.inode(entry.ino)), mode: UInt32(entry.attr.st_mode),
                                  rdev: UInt64(entry.attr.st_rdev), uid: entry.attr.st_uid, gid: entry.attr.st_gid)))
        }
    }

    func mkdir(parent: fuse_ino_t, name: UnsafePointer<CChar>, mode: mode_t, caller: Caller) throws -> fuse_entry_param {
        let dir = inodes.inode(parent)
        return try change(locking: [dir], referencing: [dir]) {
            try sys { mkdirat(dir.fd, name, mode) }
            try giveOwnership(dir: dir, name: name, to: caller, mode: nil)
            return try lookup(parent: parent, name: name)
        } message: { entry, context in
            .message(.mkdir(Mkdir(module: context.module, parent: context.ids[0], name: try fileName(name),
                                  node: context.newID(for: inodes.inode(entry.ino)), mode: UInt32(entry.attr.st_mode & 0o7777),
                                  uid: entry.attr.st_uid, gid: entry.attr.st_gid)))
        }
    }

    func symlink(target: UnsafePointer<CChar>, parent: fuse_ino_t, name: UnsafePointer<CChar>, caller: Caller) throws -> fuse_entry_param {
        let dir = inodes.inode(parent)
        return try change(locking: [dir], referencing: [dir]) {
            try sys { symlinkat(target, dir.fd, name) }
            try giveOwnership(dir: dir, name: name, to: caller, mode: nil)
            return try lookup(parent: parent, name: name)
        } message: { entry, context in
            guard let linkTarget = SymlinkTarget(bytes: UnsafeRawBufferPointer(start: target, count: strlen(target))) else {
                throw FSError(ENAMETOOLONG)
            }
            return .message(.symlink(Symlink(module: context.module, parent: context.ids[0], name: try fileName(name),
                                             node: context.newID(for: inodes.inode(entry.ino)), target: linkTarget,
                                             uid: entry.attr.st_uid, gid: entry.attr.st_gid)))
        }
    }

    func link(_ node: fuse_ino_t, newParent: fuse_ino_t, newName: UnsafePointer<CChar>) throws -> fuse_entry_param {
        let inode = inodes.inode(node)
        let newDir = inodes.inode(newParent)
        return try change(locking: [newDir], referencing: [inode, newDir], tracking: { .whole([inode.key.ino]) }) {
            try sys { linkat(inode.fd, "", newDir.fd, newName, clinux_AT_EMPTY_PATH) }
            return try lookup(parent: newParent, name: newName)
        } message: { _, context in
            .message(.link(Link(module: context.module, node: context.ids[0], newParent: context.ids[1], newName: try fileName(newName))))
        }
    }

    func unlink(parent: fuse_ino_t, name: UnsafePointer<CChar>) throws {
        try removeEntry(parent: parent, name: name, flags: 0)
    }

    func rmdir(parent: fuse_ino_t, name: UnsafePointer<CChar>) throws {
        try removeEntry(parent: parent, name: name, flags: AT_REMOVEDIR)
    }

    private func removeEntry(parent: fuse_ino_t, name: UnsafePointer<CChar>, flags: Int32) throws {
        let dir = inodes.inode(parent)
        try change(locking: [dir], referencing: [dir]) {
            try sys { unlinkat(dir.fd, name, flags) }
        } message: { _, context in
            let removal = RemoveEntry(module: context.module, parent: context.ids[0], name: try fileName(name))
            return .message(flags == AT_REMOVEDIR ? .rmdir(removal) : .unlink(removal))
        }
    }

    func rename(parent: fuse_ino_t, name: UnsafePointer<CChar>, newParent: fuse_ino_t, newName: UnsafePointer<CChar>, flags: UInt32) throws {
        let dir = inodes.inode(parent)
        let newDir = inodes.inode(newParent)
        try change(locking: [dir, newDir], referencing: [dir, newDir], tracking: {
            .whole([entryIno(in: dir, named: name), flags & clinux_RENAME_EXCHANGE != 0 ? entryIno(in: newDir, named: newName) : nil]
                .compactMap { $0 })
        }) { () -> (moved: Inode?, exchanged: Inode?) in
            try sys { clinux_renameat2(dir.fd, name, newDir.fd, newName, flags) }
            guard replicator != nil else { return (nil, nil) }
            // The inodes now behind the two names, whose last names change with this rename.
            let exchanged = flags & clinux_RENAME_EXCHANGE != 0 ? knownInode(in: dir, named: name) : nil
            return (knownInode(in: newDir, named: newName), exchanged)
        } message: { renamed, context in
            let newFileName = try fileName(newName)
            let oldFileName = try fileName(name)
            context.renamed(renamed.moved, to: newDir, as: newFileName)
            context.renamed(renamed.exchanged, to: dir, as: oldFileName)
            return .message(.rename(Rename(module: context.module, parent: context.ids[0], name: oldFileName,
                                           newParent: context.ids[1], newName: newFileName, flags: flags)))
        }
    }

    /// The backing inode number behind an entry, if it exists.
    private func entryIno(in dir: Inode, named name: UnsafePointer<CChar>) -> UInt64? {
        var st = stat()
        guard fstatat(dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    /// The inode the kernel knows behind an entry, if it knows one.
    private func knownInode(in dir: Inode, named name: UnsafePointer<CChar>) -> Inode? {
        var st = stat()
        guard fstatat(dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return inodes.known(InodeKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino)))
    }

    /// New files belong to the caller, and to the directory's group where it is set-group-ID,
    /// exactly as if the caller had created them on the plain directory.
    private func giveOwnership(dir: Inode, name: UnsafePointer<CChar>, to caller: Caller, mode: mode_t?) throws {
        if caller.isRoot { return }
        var dirStat = stat()
        try sys { fstatat(dir.fd, "", &dirStat, clinux_AT_EMPTY_PATH) }
        let gid = (dirStat.st_mode & S_ISGID) != 0 ? gid_t.max : caller.gid
        try sys { fchownat(dir.fd, name, caller.uid, gid, AT_SYMLINK_NOFOLLOW) }
        // chown clears set-user/group-ID bits that the caller may legitimately have asked for.
        if let mode, mode & (S_ISUID | S_ISGID) != 0 {
            try sys { fchmodat(dir.fd, name, mode & 0o7777, 0) }
        }
    }

    // MARK: Files

    /// Opens the backing file with the application's flags; returns the descriptor used as file handle.
    func open(_ node: fuse_ino_t, flags: Int32) throws -> Int32 {
        let inode = inodes.inode(node)
        guard flags & O_TRUNC != 0 else { return try openBacking(inode, flags: flags) }
        // Truncating on open is a change: the peer truncates too, to the same modification time.
        return try change(locking: [inode], referencing: [inode], tracking: { .whole([inode.key.ino]) }) {
            try openBacking(inode, flags: flags)
        } message: { fd, context in
            var st = stat()
            guard fstat(fd, &st) == 0 else { return .nothing }
            return .message(.setAttributes(SetAttributes(module: context.module, node: context.ids[0], size: 0,
                                                         modificationTime: .set(Timestamp(st.st_mtim)))))
        }
    }

    private func openBacking(_ inode: Inode, flags: Int32) throws -> Int32 {
        let fd = try withProcPath(inode) { path in
            try sys { Glibc.open(path, (flags & ~O_NOFOLLOW) | O_CLOEXEC) }
        }
        return try withoutDirectIO(fd, flags: flags)
    }

    /// The kernel already bypasses its page cache for O_DIRECT opens; the backing descriptor must
    /// not, because request buffers are not block-aligned. Opening with O_DIRECT first still
    /// refuses it exactly where the backing filesystem does.
    private func withoutDirectIO(_ fd: Int32, flags: Int32) throws -> Int32 {
        guard flags & clinux_O_DIRECT != 0 else { return fd }
        do {
            let current = try sys { fcntl(fd, F_GETFL) }
            try sys { fcntl(fd, F_SETFL, current & ~clinux_O_DIRECT) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    func create(parent: fuse_ino_t, name: UnsafePointer<CChar>, mode: mode_t, flags: Int32, caller: Caller) throws -> (fuse_entry_param, Int32) {
        let dir = inodes.inode(parent)
        return try change(locking: [dir], referencing: [dir], trackingAfter: { .whole([UInt64($0.0.attr.st_ino)]) }) {
            try createLocally(dir: dir, parent: parent, name: name, mode: mode, flags: flags, caller: caller)
        } message: { created, context in
            let entry = created.0
            return .message(.create(Create(module: context.module, parent: context.ids[0], name: try fileName(name),
                                           node: context.newID(for: inodes.inode(entry.ino)), mode: UInt32(entry.attr.st_mode & 0o7777),
                                           uid: entry.attr.st_uid, gid: entry.attr.st_gid, flags: UInt32(bitPattern: flags))))
        }
    }

    private func createLocally(dir: Inode, parent: fuse_ino_t, name: UnsafePointer<CChar>, mode: mode_t, flags: Int32,
                               caller: Caller) throws -> (fuse_entry_param, Int32) {
        let fd = try withoutDirectIO(try sys { openat(dir.fd, name, (flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW, mode) }, flags: flags)
        do {
            try giveOwnership(dir: dir, name: name, to: caller, mode: mode)
            return (try lookup(parent: parent, name: name), fd)
        } catch {
            close(fd)
            throw error
        }
    }

    func release(fileHandle: Int32) {
        close(fileHandle)
    }

    /// Writes `data` at `offset` (at the end for an `O_APPEND` descriptor), in one `pwrite`;
    /// the replicated write path (without a replicator, writes go straight from the request
    /// buffer). Replicated at a known offset, the peer gets the write first and both apply it at
    /// once (``Replicator/replicateWrite(_:offset:data:apply:)``); an `O_APPEND` write is applied
    /// here first, since only then is its offset known.
    func write(_ node: fuse_ino_t, fileHandle: Int32, data: UnsafeRawBufferPointer, offset: off_t, appending: Bool) throws -> Int {
        let inode = inodes.inode(node)
        if let replicator, !appending {
            return try replicator.replicateWrite(inode, offset: UInt64(offset), data: data) {
                try sys { pwrite(fileHandle, data.baseAddress, data.count, offset) }
            }
        }
        return try change(locking: [inode], referencing: [inode], tracking: {
            .bytes(ino: inode.key.ino, offset: UInt64(appending ? endOfFile(fileHandle) : offset), length: UInt64(data.count))
        }) { () -> (written: Int, at: off_t) in
            let written = try sys { pwrite(fileHandle, data.baseAddress, data.count, offset) }
            guard appending else { return (written, offset) }
            // O_APPEND wrote at the end whatever the offset: the peer must write where this did.
            var st = stat()
            try sys { fstat(fileHandle, &st) }
            return (written, st.st_size - off_t(written))
        } message: { result, context in
            .write(node: context.ids[0], offset: UInt64(result.at), data: UnsafeRawBufferPointer(rebasing: data[..<result.written]))
        }.written
    }

    /// The size of an open file (where an `O_APPEND` write will land; the file's lock is held).
    private func endOfFile(_ fd: Int32) -> off_t {
        var st = stat()
        return fstat(fd, &st) == 0 ? st.st_size : 0
    }

    /// The peer's fsync and the local one run at once (the message goes first); the call returns
    /// once both are done: the peer acknowledges only after its own fsync.
    func fsync(_ node: fuse_ino_t, fileHandle: Int32, dataOnly: Bool) throws {
        let inode = inodes.inode(node)
        func local() throws {
            if dataOnly {
                try sys { fdatasync(fileHandle) }
            } else {
                try sys { Glibc.fsync(fileHandle) }
            }
        }
        guard let replicator else { return try local() }
        try replicator.replicateOverlapping(referencing: { [inode] }, apply: local) { context in
            .message(.fsync(Fsync(module: context.module, node: context.ids[0], dataOnly: dataOnly)))
        }
    }

    func fallocate(_ node: fuse_ino_t, fileHandle: Int32, mode: Int32, offset: off_t, length: off_t) throws {
        let inode = inodes.inode(node)
        try change(locking: [inode], referencing: [inode],
                   tracking: { .bytes(ino: inode.key.ino, offset: UInt64(offset), length: UInt64(length)) }) {
            try sys { clinux_fallocate(fileHandle, mode, Int64(offset), Int64(length)) }
        } message: { _, context in
            .message(.fallocate(Fallocate(module: context.module, node: context.ids[0], mode: UInt32(bitPattern: mode),
                                          offset: UInt64(offset), length: UInt64(length))))
        }
    }

    func lseek(fileHandle: Int32, offset: off_t, whence: Int32) throws -> off_t {
        try sys { Glibc.lseek(fileHandle, offset, whence) }
    }

    /// Refused while replicating: the kernel then copies through reads and writes, which replicate.
    func copyFileRange(from source: Int32, at sourceOffset: off_t, to destination: Int32, at destinationOffset: off_t, length: Int, flags: UInt32) throws -> Int {
        if replicator != nil { throw FSError(EOPNOTSUPP) }
        var inOffset = Int64(sourceOffset)
        var outOffset = Int64(destinationOffset)
        return try sys { clinux_copy_file_range(source, &inOffset, destination, &outOffset, length, flags) }
    }

    func statfs(_ node: fuse_ino_t) throws -> statvfs {
        var st = statvfs()
        try sys { fstatvfs(inodes.inode(node).fd, &st) }
        return st
    }

    // MARK: Directories

    func opendir(_ node: fuse_ino_t) throws -> DirectoryStream {
        let fd = try sys { openat(inodes.inode(node).fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard let stream = fdopendir(fd) else {
            let error = FSError.last
            close(fd)
            throw error
        }
        return DirectoryStream(stream)
    }

    // MARK: Extended attributes

    func setxattr(_ node: fuse_ino_t, name: UnsafePointer<CChar>, value: UnsafePointer<CChar>?, size: Int, flags: Int32) throws {
        let inode = inodes.inode(node)
        if inode.isSymlink { throw FSError(EPERM) }
        try change(locking: [inode], referencing: [inode]) {
            try withProcPath(inode) { path in try sys { CLinux.setxattr(path, name, value, size, flags) } }
        } message: { _, context in
            .message(.setXattr(SetXattr(module: context.module, node: context.ids[0], name: try xattrName(name),
                                        value: Array(UnsafeRawBufferPointer(start: value, count: size)),
                                        flags: UInt32(bitPattern: flags))))
        }
    }

    /// Reads an attribute into `buffer`; with an empty buffer, returns the size it needs.
    func getxattr(_ node: fuse_ino_t, name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let inode = inodes.inode(node)
        if inode.isSymlink { throw FSError(ENODATA) }
        return try withProcPath(inode) { path in
            try sys { CLinux.getxattr(path, name, buffer.baseAddress, buffer.count) }
        }
    }

    func listxattr(_ node: fuse_ino_t, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let inode = inodes.inode(node)
        if inode.isSymlink { return 0 }
        return try withProcPath(inode) { path in
            try sys { CLinux.listxattr(path, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count) }
        }
    }

    func removexattr(_ node: fuse_ino_t, name: UnsafePointer<CChar>) throws {
        let inode = inodes.inode(node)
        if inode.isSymlink { throw FSError(EPERM) }
        try change(locking: [inode], referencing: [inode]) {
            try withProcPath(inode) { path in try sys { CLinux.removexattr(path, name) } }
        } message: { _, context in
            .message(.removeXattr(RemoveXattr(module: context.module, node: context.ids[0], name: try xattrName(name))))
        }
    }

    /// `/proc/self/fd/N` for an inode, for calls that have no `*at` or `f*` form usable on `O_PATH`.
    @discardableResult
    private func withProcPath<T>(_ inode: Inode, _ body: (UnsafePointer<CChar>) throws -> T) throws -> T {
        var path: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return try withUnsafeMutableBytes(of: &path) { raw in
            let prefix = "/proc/self/fd/"
            var index = 0
            for byte in prefix.utf8 {
                raw[index] = byte
                index += 1
            }
            var digits: [UInt8] = []
            var n = inode.fd
            repeat {
                digits.append(UInt8(48 + n % 10))
                n /= 10
            } while n > 0
            for digit in digits.reversed() {
                raw[index] = digit
                index += 1
            }
            raw[index] = 0
            return try body(raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
    }
}

/// An open directory with its read position, as the kernel's readdir offsets expect.
final class DirectoryStream {
    let stream: OpaquePointer
    /// Offset of the entry `pending` (or of the next one to read).
    var offset: off_t = 0
    /// An entry read but not yet handed to the kernel (the reply buffer was full).
    var pending: UnsafeMutablePointer<dirent>?

    init(_ stream: OpaquePointer) { self.stream = stream }

    deinit { closedir(stream) }

    var fd: Int32 { dirfd(stream) }

    /// The entry at `offset`, reading it from the stream if needed; nil at the end.
    func entry(at requested: off_t) throws -> UnsafeMutablePointer<dirent>? {
        if requested != offset {
            seekdir(stream, Int(requested))
            pending = nil
            offset = requested
        }
        if pending == nil {
            errno = 0
            pending = Glibc.readdir(stream)
            if pending == nil, errno != 0 { throw FSError.last }
        }
        return pending
    }

    /// Marks the pending entry as delivered.
    func advance() {
        if let entry = pending {
            offset = off_t(entry.pointee.d_off)
            pending = nil
        }
    }
}
