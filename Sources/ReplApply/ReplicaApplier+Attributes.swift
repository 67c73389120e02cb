import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// Attributes: mode, owner, size, times and extended attributes.
extension ReplicaApplier {
    /// In ReplFS's order: chmod, chown (which may clear set-ID bits), truncate, then times, so
    /// times the primary sent are the ones that stay.
    func apply(_ message: SetAttributes) throws {
        let node = try nodes.node(message.node)
        if let mode = message.mode {
            try withProcPath(node.fd) { path in try sys { chmod(path, mode_t(mode & 0o7777)) } }
        }
        if message.uid != nil || message.gid != nil {
            try sys { fchownat(node.fd, "", message.uid ?? UInt32.max, message.gid ?? UInt32.max,
                               clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        }
        if let size = message.size {
            let length = try fileOffset(size)
            if node.isRegularFile {
                let fd = try writableDescriptor(message.node)
                try sys { ftruncate(fd, length) }
            } else {
                try withProcPath(node.fd) { path in try sys { truncate(path, length) } }
            }
        }
        if message.accessTime != .omit || message.modificationTime != .omit {
            var times = [timespec(message.accessTime), timespec(message.modificationTime)]
            try sys { utimensat(node.fd, "", &times, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        }
    }

    func apply(_ message: SetXattr) throws {
        let node = try xattrCapableNode(message.node)
        try withProcPath(node.fd) { path in
            try message.name.withCString { name in
                try message.value.withUnsafeBytes { value in
                    try sys { setxattr(path, name, value.baseAddress, value.count, Int32(bitPattern: message.flags)) }
                }
            }
        }
    }

    func apply(_ message: RemoveXattr) throws {
        let node = try xattrCapableNode(message.node)
        try withProcPath(node.fd) { path in
            try message.name.withCString { name in try sys { removexattr(path, name) } }
        }
    }

    /// Symbolic links refuse extended attributes with `EPERM`, as ReplFS (and ext4 for `user.*`) does.
    private func xattrCapableNode(_ ref: NodeRef) throws -> BoundNode {
        let node = try nodes.node(ref)
        if node.isSymlink {
            throw RefusedOperation(code: EPERM, explanation: "\(ref) is a symbolic link: no extended attributes")
        }
        return node
    }
}

extension timespec {
    /// utimensat(2)'s form of a time change: `UTIME_OMIT`, `UTIME_NOW` or the exact time.
    init(_ change: TimeChange) {
        switch change {
        case .omit: self.init(tv_sec: 0, tv_nsec: clinux_UTIME_OMIT)
        case .now: self.init(tv_sec: 0, tv_nsec: clinux_UTIME_NOW)
        case .set(let time): self.init(tv_sec: Int(time.seconds), tv_nsec: Int(time.nanoseconds))
        }
    }
}
