import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// Names: binding and forgetting ids, creating, linking, removing and renaming entries.
extension ReplicaApplier {
    func apply(_ message: Bind) throws {
        try bind(message.node, name: message.name, in: try nodes.node(message.parent))
    }

    /// Closes what `node` holds; the root stays bound (forgetting it changes nothing).
    func apply(_ message: Forget) throws {
        guard message.node != .root else { return }
        writableFiles.close(message.node)
        guard nodes.forget(message.node) else { throw UnknownNode(node: message.node) }
    }

    /// Created with `O_EXCL` whatever the application's flags: the primary sends `create` only
    /// for a name that did not exist, and following an existing name (a symlink) here could
    /// leave the module's directory.
    func apply(_ message: Create) throws {
        let dir = try nodes.node(message.parent)
        let fd = try message.name.withCString { name in
            try sys { openat(dir.fd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode_t(message.mode & 0o7777)) }
        }
        do {
            try settleNewEntry(message.name, in: dir, uid: message.uid, gid: message.gid, mode: message.mode)
            try bind(message.node, name: message.name, in: dir)
        } catch {
            close(fd)
            throw error
        }
        _ = try writableFiles.descriptor(for: message.node) { fd }
    }

    func apply(_ message: Mknod) throws {
        let dir = try nodes.node(message.parent)
        try message.name.withCString { name in
            try sys { mknodat(dir.fd, name, mode_t(message.mode), dev_t(message.rdev)) }
        }
        try settleNewEntry(message.name, in: dir, uid: message.uid, gid: message.gid, mode: message.mode)
        try bind(message.node, name: message.name, in: dir)
    }

    func apply(_ message: Mkdir) throws {
        let dir = try nodes.node(message.parent)
        try message.name.withCString { name in
            try sys { mkdirat(dir.fd, name, mode_t(message.mode & 0o7777)) }
        }
        try settleNewEntry(message.name, in: dir, uid: message.uid, gid: message.gid, mode: message.mode)
        try bind(message.node, name: message.name, in: dir)
    }

    func apply(_ message: Symlink) throws {
        let dir = try nodes.node(message.parent)
        try message.target.withCString { target in
            try message.name.withCString { name in try sys { symlinkat(target, dir.fd, name) } }
        }
        try settleNewEntry(message.name, in: dir, uid: message.uid, gid: message.gid, mode: nil)
        try bind(message.node, name: message.name, in: dir)
    }

    func apply(_ message: Link) throws {
        let node = try nodes.node(message.node)
        let dir = try nodes.node(message.newParent)
        try message.newName.withCString { name in
            try sys { linkat(node.fd, "", dir.fd, name, clinux_AT_EMPTY_PATH) }
        }
    }

    /// `unlink` (flags 0) and `rmdir` (`AT_REMOVEDIR`); the node stays bound until `forget`.
    func remove(_ message: RemoveEntry, flags: Int32) throws {
        let dir = try nodes.node(message.parent)
        try message.name.withCString { name in try sys { unlinkat(dir.fd, name, flags) } }
    }

    func apply(_ message: Rename) throws {
        let dir = try nodes.node(message.parent)
        let newDir = try nodes.node(message.newParent)
        try message.name.withCString { name in
            try message.newName.withCString { newName in
                try sys { clinux_renameat2(dir.fd, name, newDir.fd, newName, message.flags) }
            }
        }
    }

    /// Binds `ref` to the entry `name` of `dir`, dropping what an earlier binding of `ref` held.
    private func bind(_ ref: NodeRef, name: FileName, in dir: BoundNode) throws {
        guard ref != .root else {
            throw RefusedOperation(code: EINVAL, explanation: "node 1 is the module's root and cannot be rebound")
        }
        writableFiles.close(ref)
        try nodes.bind(ref, parent: dir, name: name)
    }

    /// Gives a new entry the owner the primary's copy has, then the permission bits `mode` asks
    /// for where this process's umask or the chown (which clears set-ID bits) changed them; a
    /// directory keeps a set-group-ID bit inherited from its parent, as on the primary.
    /// `mode` is nil for symbolic links, whose permissions mean nothing.
    private func settleNewEntry(_ name: FileName, in dir: BoundNode, uid: UInt32, gid: UInt32, mode: UInt32?) throws {
        try name.withCString { name in
            try sys { fchownat(dir.fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) }
            guard let mode else { return }
            var st = stat()
            try sys { fstatat(dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) }
            var wanted = mode_t(mode & 0o7777)
            if st.st_mode & S_IFMT == S_IFDIR { wanted |= st.st_mode & S_ISGID }
            if st.st_mode & 0o7777 != wanted {
                try sys { fchmodat(dir.fd, name, wanted, 0) }
            }
        }
    }
}
