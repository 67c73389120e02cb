import CFuse3
import CLinux
import Glibc

/// Identity of a file in the backing filesystem.
struct InodeKey: Hashable {
    let dev: UInt64
    let ino: UInt64
}

/// A backing file the kernel knows about: an `O_PATH` descriptor plus the kernel's lookup count.
///
/// Its FUSE node id is the object's address, so resolving a node id costs no lock; the table keeps
/// the object alive until the kernel forgets every lookup of it.
final class Inode {
    /// `O_PATH | O_NOFOLLOW` descriptor of the backing file; every operation on it is relative to this.
    let fd: Int32
    let key: InodeKey
    let isSymlink: Bool
    /// Lookups the kernel holds; guarded by the table's lock.
    fileprivate var lookups: UInt64 = 0
    /// Replication's knowledge of this inode, guarded by the ``Replicator``'s naming lock: its
    /// stream id (0: not bound) and the entry it was last looked up, created or renamed as.
    var streamID: UInt64 = 0
    var lastParent: Inode?
    var lastName: [UInt8] = []

    init(fd: Int32, stat st: stat) {
        self.fd = fd
        self.key = InodeKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
        self.isSymlink = (st.st_mode & S_IFMT) == S_IFLNK
    }

    deinit { close(fd) }
}

/// Maps kernel node ids to backing inodes, counting lookups and forgets as the kernel does.
final class InodeTable {
    let root: Inode
    /// Held while a replicated change to a file (or, for a directory, to its entries) is applied
    /// and handed to the stream, and while a resync reads it, so the stream's order per file is
    /// the local order. Keyed by inode number, so files the kernel does not know are covered too.
    let changeLocks = LockStripes()
    private let lock = Lock()
    private var byKey: [InodeKey: Inode] = [:]

    init(rootFD: Int32) throws {
        var st = stat()
        try sys { fstatat(rootFD, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        root = Inode(fd: rootFD, stat: st)
        root.lookups = 1
        byKey[root.key] = root
    }

    /// The inode behind a node id the kernel sent.
    @inline(__always)
    func inode(_ nodeID: fuse_ino_t) -> Inode {
        if nodeID == fuse_ino_t(FUSE_ROOT_ID) { return root }
        return Unmanaged<Inode>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(nodeID))!).takeUnretainedValue()
    }

    /// The node id handed to the kernel for an inode.
    @inline(__always)
    func nodeID(_ inode: Inode) -> fuse_ino_t {
        if inode === root { return fuse_ino_t(FUSE_ROOT_ID) }
        return fuse_ino_t(UInt(bitPattern: Unmanaged.passUnretained(inode).toOpaque()))
    }

    /// Records one kernel lookup of the file open at `fd`; takes ownership of `fd`.
    func remember(fd: Int32, stat st: stat) -> Inode {
        let key = InodeKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
        let (inode, duplicate) = lock.withLock { () -> (Inode, Bool) in
            if let known = byKey[key] {
                known.lookups += 1
                return (known, true)
            }
            let fresh = Inode(fd: fd, stat: st)
            fresh.lookups = 1
            byKey[key] = fresh
            return (fresh, false)
        }
        if duplicate { close(fd) }
        return inode
    }

    /// Drops `count` kernel lookups of a node; the inode goes when none is left.
    /// - Returns: the inode if the kernel no longer knows it.
    @discardableResult
    func forget(_ nodeID: fuse_ino_t, count: UInt64) -> Inode? {
        let inode = self.inode(nodeID)
        if inode === root { return nil }
        return lock.withLock {
            inode.lookups -= min(count, inode.lookups)
            guard inode.lookups == 0 else { return nil }
            byKey[inode.key] = nil
            return inode
        }
    }

    /// Every inode the kernel knows now.
    var all: [Inode] { lock.withLock { Array(byKey.values) } }

    /// The inode the kernel knows for a backing file, if any.
    func known(_ key: InodeKey) -> Inode? {
        lock.withLock { byKey[key] }
    }
}

/// A fixed set of locks shared by all files: a file's lock is chosen by its inode number.
/// Whoever needs several takes them through ``withLocks(for:_:)`` (sorted, each once), so two
/// threads never wait for each other in opposite order.
final class LockStripes {
    private let locks = (0..<127).map { _ in Lock() }

    private func index(_ ino: UInt64) -> Int { Int(ino % UInt64(127)) }

    func withLock<T>(for ino: UInt64, _ body: () throws -> T) rethrows -> T {
        try locks[index(ino)].withLock(body)
    }

    func withLocks<T>(for inos: [UInt64], _ body: () throws -> T) rethrows -> T {
        let indexes = Array(Set(inos.map(index))).sorted()
        return try lockingInOrder(indexes[...], body)
    }

    private func lockingInOrder<T>(_ indexes: ArraySlice<Int>, _ body: () throws -> T) rethrows -> T {
        guard let first = indexes.first else { return try body() }
        return try locks[first].withLock { try lockingInOrder(indexes.dropFirst(), body) }
    }
}
