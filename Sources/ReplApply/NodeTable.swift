import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// An inode of this copy: `(st_dev, st_ino)`, unique while a descriptor holds the inode.
struct InodeKey: Hashable {
    let device: UInt64
    let inode: UInt64

    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}

/// A file of this copy known by a node id: an `O_PATH | O_NOFOLLOW` descriptor, which follows the
/// inode through renames and unlinks, and the file's type.
struct BoundNode {
    let fd: Int32
    /// `st_mode & S_IFMT`.
    let type: mode_t
    let inode: InodeKey

    var isRegularFile: Bool { type == S_IFREG }
    var isDirectory: Bool { type == S_IFDIR }
    var isSymlink: Bool { type == S_IFLNK }
}

/// The primary's node ids mapped to descriptors of this copy's files; owns every descriptor.
///
/// Also finds the ids bound to an inode (a resync that removes or replaces a file unbinds them)
/// and remembers ids unbound that way until the primary forgets or rebinds them.
final class NodeTable {
    private var nodes: [UInt64: BoundNode] = [:]
    private var idsByInode: [InodeKey: [UInt64]] = [:]
    /// Ids unbound by a resync and not yet forgotten or rebound by the primary.
    private var unboundByResync: Set<UInt64> = []

    /// - Parameter rootFD: `O_PATH` descriptor of the module directory, bound as ``NodeRef/root``.
    init(rootFD: Int32) throws {
        let root = try Self.describe(fd: rootFD)
        nodes[NodeRef.root.id] = root
        idsByInode[root.inode] = [NodeRef.root.id]
    }

    deinit {
        for node in nodes.values { close(node.fd) }
    }

    var count: Int { nodes.count }

    /// The node bound to `ref`; throws ``UnknownNode`` if there is none.
    func node(_ ref: NodeRef) throws -> BoundNode {
        guard let node = nodes[ref.id] else {
            throw UnknownNode(node: ref, unboundByResync: unboundByResync.contains(ref.id))
        }
        return node
    }

    /// Binds `ref` to the entry `name` of directory `parent`, as the primary named it.
    func bind(_ ref: NodeRef, parent: BoundNode, name: FileName) throws {
        let fd = try name.withCString { name in
            try sys { openat(parent.fd, name, clinux_O_PATH | O_NOFOLLOW | O_CLOEXEC) }
        }
        try remember(ref, fd: fd)
    }

    /// Takes ownership of `fd` as the node `ref`, replacing (and closing) an earlier binding.
    func remember(_ ref: NodeRef, fd: Int32) throws {
        let node: BoundNode
        do {
            node = try Self.describe(fd: fd)
        } catch {
            close(fd)
            throw error
        }
        drop(ref.id)
        unboundByResync.remove(ref.id)
        nodes[ref.id] = node
        idsByInode[node.inode, default: []].append(ref.id)
    }

    /// Closes the descriptor of `ref`; false if it was neither bound nor unbound by a resync.
    func forget(_ ref: NodeRef) -> Bool {
        if drop(ref.id) { return true }
        return unboundByResync.remove(ref.id) != nil
    }

    /// Unbinds (and closes) every id but the root's bound to `inode`, which a resync removed or
    /// replaced; later operations on them fail with `ESTALE`. Returns the ids.
    func unbind(inode: InodeKey) -> [NodeRef] {
        guard let ids = idsByInode[inode] else { return [] }
        let dropped = ids.filter { $0 != NodeRef.root.id }
        for id in dropped {
            drop(id)
            unboundByResync.insert(id)
        }
        return dropped.map(NodeRef.init)
    }

    /// Removes `id` from the table and its inode's list, closing its descriptor.
    @discardableResult
    private func drop(_ id: UInt64) -> Bool {
        guard let node = nodes.removeValue(forKey: id) else { return false }
        close(node.fd)
        var ids = idsByInode[node.inode] ?? []
        ids.removeAll { $0 == id }
        idsByInode[node.inode] = ids.isEmpty ? nil : ids
        return true
    }

    private static func describe(fd: Int32) throws -> BoundNode {
        var st = stat()
        try sys { fstatat(fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        return BoundNode(fd: fd, type: st.st_mode & S_IFMT, inode: InodeKey(st))
    }
}
