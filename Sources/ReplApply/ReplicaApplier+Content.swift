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
    /// for the call, walking the path without following symbolic links (see ``openDirectory(_:)``).
    /// A region past the end of the file extends it; its writeback starts at once.
    ///
    /// A region of zeros becomes a hole where it lies inside the file (punched) and a hole by
    /// extension past its end, so sparse files stay sparse; if the filesystem cannot punch
    /// holes the zeros are written. The file's `security.capability`, which the kernel drops on
    /// every write, is set back: the region is the source's content, not a change to the file.
    func apply(_ message: ResyncRegion) throws {
        switch message.target {
        case .node(let ref):
            try writeRegion(message.data, to: try writableDescriptor(ref), at: message.offset)
        case .path(let path):
            let (dir, name) = try openParent(of: path)
            defer { dir.close() }
            let fd = try openRegularFile(name, in: dir.fd, flags: O_WRONLY).fd
            defer { close(fd) }
            try writeRegion(message.data, to: fd, at: message.offset)
            // Start writing it back now, without waiting: the end of the resync syncs the
            // filesystem before the copy counts as up to date, and finds little left to write.
            _ = clinux_sync_file_range_write(fd, Int64(message.offset), Int64(message.data.count))
        }
    }

    private func writeRegion(_ data: ArraySlice<UInt8>, to fd: Int32, at offset: UInt64) throws {
        guard !data.isEmpty else { return }
        let capability = try Xattrs.value(fd: fd, name: Xattrs.capability)
        if isAllZero(data) {
            try writeZeros(count: data.count, to: fd, at: offset)
        } else {
            try writeAll(data, to: fd, at: offset)
        }
        if let capability { try Xattrs.set(fd: fd, name: Xattrs.capability, value: capability) }
    }

    /// Punches `[offset, offset + count)` where it lies inside the file, extends the file past
    /// its end, or writes the zeros when the filesystem cannot punch holes.
    private func writeZeros(count: Int, to fd: Int32, at offset: UInt64) throws {
        let start = try fileOffset(offset)
        let (end, overflow) = start.addingReportingOverflow(off_t(count))
        guard !overflow else { throw RefusedOperation(code: EFBIG, explanation: "region end exceeds the largest file offset") }
        var st = stat()
        try sys { fstat(fd, &st) }
        if start < st.st_size {
            let punched = min(end, st.st_size) - start
            let mode = clinux_FALLOC_FL_PUNCH_HOLE | clinux_FALLOC_FL_KEEP_SIZE
            if clinux_fallocate(fd, mode, Int64(start), Int64(punched)) != 0 {
                guard errno == EOPNOTSUPP else { throw FSError.last }
                try writeAll(ArraySlice(repeating: 0, count: count), to: fd, at: offset)
                return
            }
        }
        if end > st.st_size { try sys { ftruncate(fd, end) } }
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
}

/// True for a region of zeros only (or an empty one) (`memcmp` of the bytes with themselves shifted by one).
func isAllZero(_ data: ArraySlice<UInt8>) -> Bool {
    data.withUnsafeBytes { bytes in
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        return bytes[0] == 0 && memcmp(base, base + 1, bytes.count - 1) == 0
    }
}
