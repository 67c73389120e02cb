import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// File contents: writes, allocation, durability and resynchronised regions.
extension ReplicaApplier {
    func apply(_ message: Write) throws {
        try writeAll(message.data, to: try writableDescriptor(message.node), at: message.offset)
    }

    func apply(_ message: Fallocate) throws {
        let fd = try writableDescriptor(message.node)
        let offset = try fileOffset(message.offset)
        let length = try fileOffset(message.length)
        try sys { clinux_fallocate(fd, Int32(bitPattern: message.mode), Int64(offset), Int64(length)) }
    }

    /// A regular file through its writable descriptor; a directory (the root included) through a
    /// read-only descriptor opened for the call.
    func apply(_ message: Fsync) throws {
        let node = try nodes.node(message.node)
        if node.isDirectory {
            let fd = try withProcPath(node.fd) { path in try sys { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) } }
            defer { close(fd) }
            try sync(fd, dataOnly: message.dataOnly)
        } else {
            try sync(try writableDescriptor(message.node), dataOnly: message.dataOnly)
        }
    }

    /// A node's region through its writable descriptor; a path's through a descriptor opened
    /// for the call, walking the path without following symbolic links.
    func apply(_ message: ResyncRegion) throws {
        switch message.target {
        case .node(let ref):
            try writeAll(message.data, to: try writableDescriptor(ref), at: message.offset)
        case .path(let path):
            let fd = try openForResync(path)
            defer { close(fd) }
            try writeAll(message.data, to: fd, at: message.offset)
        }
    }

    /// The cached writable descriptor of a regular file; refuses other file types, so a write
    /// never opens a device node.
    func writableDescriptor(_ ref: NodeRef) throws -> Int32 {
        let node = try nodes.node(ref)
        guard node.isRegularFile else {
            throw RefusedOperation(code: node.isDirectory ? EISDIR : EINVAL, explanation: "\(ref) is not a regular file")
        }
        return try writableFiles.descriptor(for: ref) { try openWritable(node.fd) }
    }

    private func openWritable(_ pathFD: Int32) throws -> Int32 {
        try withProcPath(pathFD) { path in try sys { open(path, O_WRONLY | O_CLOEXEC) } }
    }

    private func sync(_ fd: Int32, dataOnly: Bool) throws {
        if dataOnly {
            try sys { fdatasync(fd) }
        } else {
            try sys { fsync(fd) }
        }
    }

    private func writeAll(_ data: ArraySlice<UInt8>, to fd: Int32, at offset: UInt64) throws {
        let start = try fileOffset(offset)
        try data.withUnsafeBytes { bytes in
            var done = 0
            while done < bytes.count {
                done += try sys { pwrite(fd, bytes.baseAddress! + done, bytes.count - done, start + off_t(done)) }
            }
        }
    }

    /// A file offset or length from the wire; beyond `off_t` is what the kernel calls `EFBIG`.
    func fileOffset(_ value: UInt64) throws -> off_t {
        guard let offset = off_t(exactly: value) else {
            throw RefusedOperation(code: EFBIG, explanation: "offset \(value) exceeds the largest file offset")
        }
        return offset
    }

    /// Walks `path` from the root with `O_NOFOLLOW` at every step, so it cannot leave the module.
    private func openForResync(_ path: RelativePath) throws -> Int32 {
        var directory = try nodes.node(.root).fd
        var opened: [Int32] = []
        defer { opened.forEach { close($0) } }
        let components = path.bytes.split(separator: UInt8(ascii: "/"))
        for (index, component) in components.enumerated() {
            guard let name = FileName(bytes: component) else {
                throw RefusedOperation(code: EINVAL, explanation: "invalid path component in \(path)")
            }
            let isLast = index == components.count - 1
            let flags = clinux_O_PATH | O_NOFOLLOW | O_CLOEXEC | (isLast ? 0 : O_DIRECTORY)
            directory = try name.withCString { name in try sys { openat(directory, name, flags) } }
            opened.append(directory)
        }
        var st = stat()
        try sys { fstatat(directory, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw RefusedOperation(code: EINVAL, explanation: "\(path) is not a regular file")
        }
        return try openWritable(directory)
    }
}
