import Glibc
import ReplFS
import ReplProtocol

/// Removing entries a resync does not list (or replaces): a whole directory tree is removed
/// through descriptors, never following a symbolic link, and every node id bound to a removed
/// inode is unbound.
extension ReplicaApplier {
    /// Removes the entry `name` of `dir`, whose status is `status`; a directory with everything under it.
    func removeEntry(_ name: FileName, in dir: Int32, status: stat) throws {
        if status.st_mode & S_IFMT == S_IFDIR {
            try removeTree(name, in: dir, inode: InodeKey(status))
        } else {
            try during("unlink '\(name)'") {
                try name.withCString { name in try sys { unlinkat(dir, name, 0) } }
            }
            unbindNodes(of: InodeKey(status))
        }
    }

    /// Unbinds the node ids bound to `inode` (and closes their writable descriptors): later
    /// operations on them fail with `ESTALE`, so the primary learns that the file it meant is gone.
    func unbindNodes(of inode: InodeKey) {
        for ref in nodes.unbind(inode: inode) { writableFiles.close(ref) }
    }

    /// Depth first with an explicit stack (one open directory per level, no recursion), so a
    /// deep tree cannot exhaust the thread's stack.
    private func removeTree(_ name: FileName, in parent: Int32, inode: InodeKey) throws {
        struct Level {
            let stream: DirectoryStream
            let name: FileName
            let parent: Int32
            let inode: InodeKey
            let path: String
        }
        var stack = [Level(stream: try during("open directory '\(name)' to remove it") { try DirectoryStream(name, in: parent) },
                           name: name, parent: parent, inode: inode, path: "\(name)")]
        while let top = stack.last {
            if let child = try during("read directory '\(top.path)'", { try top.stream.next() }) {
                let path = "\(top.path)/\(child)"
                var st = stat()
                try during("stat '\(path)'") {
                    try child.withCString { child in try sys { fstatat(top.stream.fd, child, &st, AT_SYMLINK_NOFOLLOW) } }
                }
                if st.st_mode & S_IFMT == S_IFDIR {
                    let stream = try during("open directory '\(path)' to remove it") { try DirectoryStream(child, in: top.stream.fd) }
                    stack.append(Level(stream: stream, name: child, parent: top.stream.fd, inode: InodeKey(st), path: path))
                } else {
                    try during("unlink '\(path)'") {
                        try child.withCString { child in try sys { unlinkat(top.stream.fd, child, 0) } }
                    }
                    unbindNodes(of: InodeKey(st))
                }
            } else {
                stack.removeLast()
                try during("rmdir '\(top.path)'") {
                    try top.name.withCString { name in try sys { unlinkat(top.parent, name, AT_REMOVEDIR) } }
                }
                unbindNodes(of: top.inode)
            }
        }
    }
}
