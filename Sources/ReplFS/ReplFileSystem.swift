import CFuse3
import CLinux
import Glibc

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

    public init() {}
}

/// The filesystem: every operation is carried out on the backing directory through descriptors
/// opened before the mount, so ReplFS can be mounted over that very directory.
///
/// Methods take and return Swift values and throw ``FSError``; ``FuseSession`` turns kernel
/// requests into calls here and results into replies.
public final class ReplFileSystem {
    let options: ReplFSOptions
    let inodes: InodeTable
    /// `/proc/self/fd`, to reopen an `O_PATH` descriptor where no `*at` call exists.
    private let procSelfFD: Int32

    /// - Parameter rootFD: an `O_PATH` descriptor of the backing directory; owned from now on.
    public init(rootFD: Int32, options: ReplFSOptions = ReplFSOptions()) throws {
        self.options = options
        self.inodes = try InodeTable(rootFD: rootFD)
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
        return entry(for: inode, stat: st)
    }

    func forget(_ node: fuse_ino_t, count: UInt64) {
        inodes.forget(node, count: count)
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

    func setattr(_ node: fuse_ino_t, _ change: AttributeChange, fileHandle: Int32?) throws -> stat {
        let inode = inodes.inode(node)
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
        return try getattr(node)
    }

    func readlink(_ node: fuse_ino_t) throws -> [CChar] {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = try sys { Glibc.readlinkat(inodes.inode(node).fd, "", &buffer, buffer.count - 1) }
        buffer[length] = 0
        return buffer
    }

    func mknod(parent: fuse_ino_t, name: UnsafePointer<CChar>, mode: mode_t, rdev: dev_t, caller: Caller) throws -> fuse_entry_param {
        let dir = inodes.inode(parent)
        try sys { mknodat(dir.fd, name, mode, rdev) }
        try giveOwnership(dir: dir, name: name, to: caller, mode: mode)
        return try lookup(parent: parent, name: name)
    }

    func mkdir(parent: fuse_ino_t, name: UnsafePointer<CChar>, mode: mode_t, caller: Caller) throws -> fuse_entry_param {
        let dir = inodes.inode(parent)
        try sys { mkdirat(dir.fd, name, mode) }
        try giveOwnership(dir: dir, name: name, to: caller, mode: nil)
        return try lookup(parent: parent, name: name)
    }

    func symlink(target: UnsafePointer<CChar>, parent: fuse_ino_t, name: UnsafePointer<CChar>, caller: Caller) throws -> fuse_entry_param {
        let dir = inodes.inode(parent)
        try sys { symlinkat(target, dir.fd, name) }
        try giveOwnership(dir: dir, name: name, to: caller, mode: nil)
        return try lookup(parent: parent, name: name)
    }

    func link(_ node: fuse_ino_t, newParent: fuse_ino_t, newName: UnsafePointer<CChar>) throws -> fuse_entry_param {
        let inode = inodes.inode(node)
        try sys { linkat(inode.fd, "", inodes.inode(newParent).fd, newName, clinux_AT_EMPTY_PATH) }
        return try lookup(parent: newParent, name: newName)
    }

    func unlink(parent: fuse_ino_t, name: UnsafePointer<CChar>) throws {
        try sys { unlinkat(inodes.inode(parent).fd, name, 0) }
    }

    func rmdir(parent: fuse_ino_t, name: UnsafePointer<CChar>) throws {
        try sys { unlinkat(inodes.inode(parent).fd, name, AT_REMOVEDIR) }
    }

    func rename(parent: fuse_ino_t, name: UnsafePointer<CChar>, newParent: fuse_ino_t, newName: UnsafePointer<CChar>, flags: UInt32) throws {
        try sys { clinux_renameat2(inodes.inode(parent).fd, name, inodes.inode(newParent).fd, newName, flags) }
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

    func fsync(fileHandle: Int32, dataOnly: Bool) throws {
        if dataOnly {
            try sys { fdatasync(fileHandle) }
        } else {
            try sys { Glibc.fsync(fileHandle) }
        }
    }

    func fallocate(fileHandle: Int32, mode: Int32, offset: off_t, length: off_t) throws {
        try sys { clinux_fallocate(fileHandle, mode, Int64(offset), Int64(length)) }
    }

    func lseek(fileHandle: Int32, offset: off_t, whence: Int32) throws -> off_t {
        try sys { Glibc.lseek(fileHandle, offset, whence) }
    }

    func copyFileRange(from source: Int32, at sourceOffset: off_t, to destination: Int32, at destinationOffset: off_t, length: Int, flags: UInt32) throws -> Int {
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
        try withProcPath(inode) { path in try sys { CLinux.setxattr(path, name, value, size, flags) } }
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
        try withProcPath(inode) { path in try sys { CLinux.removexattr(path, name) } }
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
