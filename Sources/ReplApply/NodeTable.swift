import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// A file of this copy known by a node id: an `O_PATH | O_NOFOLLOW` descriptor, which follows the
/// inode through renames and unlinks, and the file's type.
struct BoundNode {
    let fd: Int32
    /// `st_mode & S_IFMT`.
    let type: mode_t

    var isRegularFile: Bool { type == S_IFREG }
    var isDirectory: Bool { type == S_IFDIR }
    var isSymlink: Bool { type == S_IFLNK }
}

/// The primary's node ids mapped to descriptors of this copy's files; owns every descriptor.
final class NodeTable {
    private var nodes: [UInt64: BoundNode] = [:]

    /// - Parameter rootFD: `O_PATH` descriptor of the module directory, bound as ``NodeRef/root``.
    init(rootFD: Int32) throws {
        nodes[NodeRef.root.id] = try Self.describe(fd: rootFD)
    }

    deinit {
        for node in nodes.values { close(node.fd) }
    }

    var count: Int { nodes.count }

    /// The node bound to `ref`; throws ``UnknownNode`` if there is none.
    func node(_ ref: NodeRef) throws -> BoundNode {
        guard let node = nodes[ref.id] else { throw UnknownNode(node: ref) }
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
        if let previous = nodes.updateValue(node, forKey: ref.id) { close(previous.fd) }
    }

    /// Closes the descriptor of `ref`; false if it was not bound.
    func forget(_ ref: NodeRef) -> Bool {
        guard let node = nodes.removeValue(forKey: ref.id) else { return false }
        close(node.fd)
        return true
    }

    private static func describe(fd: Int32) throws -> BoundNode {
        var st = stat()
        try sys { fstatat(fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        return BoundNode(fd: fd, type: st.st_mode & S_IFMT)
    }
}
