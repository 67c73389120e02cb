import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// Giving one name of a multi-link inode an inode of its own, when the resync's source has the
/// names as different files: the content is copied (so what was there stays, for regions that
/// do not differ) and the copy renamed over the name.
extension ReplicaApplier {
    /// Replaces `name` of `dir` (of status `status`, `kind` its type) with a copy of its own;
    /// node ids bound to the old inode are unbound (which file they meant is unknown).
    func separate(_ name: FileName, in dir: Int32, status: stat, kind: EntryKind) throws {
        guard kind == .regular else {
            // Nothing to keep: a FIFO, socket or device node is its type and number.
            try removeEntry(name, in: dir, status: status)
            try kind.create(name, in: dir)
            return
        }
        let source = try openRegularFile(name, in: dir, flags: O_RDONLY).fd
        defer { close(source) }
        let (temporary, copy) = try createTemporary(in: dir, for: status)
        defer { close(copy) }
        do {
            try during("copy '\(name)' to '\(temporary)'") { try copyData(from: source, to: copy, size: status.st_size) }
            try during("rename '\(temporary)' to '\(name)'") {
                try temporary.withCString { temporary in
                    try name.withCString { name in try sys { renameat(dir, temporary, dir, name) } }
                }
            }
        } catch {
            _ = temporary.withCString { unlinkat(dir, $0, 0) }
            throw error
        }
        unbindNodes(of: InodeKey(status))
    }

    /// A new empty file, mode 0600, under an unused name of `dir`.
    private func createTemporary(in dir: Int32, for status: stat) throws -> (FileName, Int32) {
        for attempt in 0..<100 {
            guard let name = FileName(".replapply-separate-\(status.st_ino)-\(attempt)") else { break }
            let (fd, code) = name.withCString { name in
                let fd = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
                return (fd, errno)
            }
            if fd >= 0 { return (name, fd) }
            if code != EEXIST { throw StepFailure(code: code, step: "create '\(name)'", reason: "\(FSError(code))") }
        }
        throw RefusedOperation(code: EEXIST, explanation: "no unused temporary name to separate inode \(status.st_ino)")
    }

    /// Copies the data segments of `source` (holes stay holes), then sets the size.
    private func copyData(from source: Int32, to target: Int32, size: off_t) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var position: off_t = 0
        segments: while position < size {
            let data = lseek(source, position, clinux_SEEK_DATA)
            if data < 0 {
                if errno == ENXIO { break }
                throw FSError.last
            }
            let hole = min(try sys { lseek(source, data, clinux_SEEK_HOLE) }, size)
            var offset = data
            while offset < hole {
                let count = try buffer.withUnsafeMutableBytes { bytes in
                    try sys { pread(source, bytes.baseAddress, min(bytes.count, Int(hole - offset)), offset) }
                }
                if count == 0 { break segments }
                try buffer.withUnsafeBytes { bytes in
                    var done = 0
                    while done < count {
                        done += try sys { pwrite(target, bytes.baseAddress! + done, count - done, offset + off_t(done)) }
                    }
                }
                offset += off_t(count)
            }
            position = hole
        }
        try sys { ftruncate(target, size) }
    }
}
