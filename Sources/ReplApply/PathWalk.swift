import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// An `O_PATH` descriptor of a directory of the module, reached by ``ReplicaApplier/openDirectory(_:)``;
/// the root's is borrowed from the node table, the others are closed by ``close()``.
struct DirectoryHandle {
    let fd: Int32
    let owned: Bool

    func close() {
        if owned { Glibc.close(fd) }
    }
}

/// Resolving resync paths (which name files from the module's root) on this copy.
///
/// Every component is opened with `openat(O_PATH | O_NOFOLLOW | O_DIRECTORY)` relative to the
/// previous one: a symbolic link or a non-directory on the way fails with `ENOTDIR`, so a path
/// never leaves the module (names cannot be `.` or `..`: ``RelativePath`` refuses them).
extension ReplicaApplier {
    /// The directory at `path`; nil is the module's root.
    func openDirectory(_ path: RelativePath?) throws -> DirectoryHandle {
        var current = DirectoryHandle(fd: try nodes.node(.root).fd, owned: false)
        guard let path else { return current }
        var walked: [UInt8] = []
        for name in try components(of: path) {
            if !walked.isEmpty { walked.append(UInt8(ascii: "/")) }
            walked += name.bytes
            let parent = current
            defer { parent.close() }
            let fd = try during("open directory '\(String(decoding: walked, as: UTF8.self))'") {
                try name.withCString { name in
                    try sys { openat(parent.fd, name, clinux_O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC) }
                }
            }
            current = DirectoryHandle(fd: fd, owned: true)
        }
        return current
    }

    /// The directory holding the last component of `path`, and that component.
    func openParent(of path: RelativePath) throws -> (DirectoryHandle, FileName) {
        let names = try components(of: path)
        guard let last = names.last else {
            throw RefusedOperation(code: EINVAL, explanation: "empty path")
        }
        let parentPath = names.count > 1 ? RelativePath(bytes: path.bytes[..<(path.bytes.count - last.bytes.count - 1)]) : nil
        return (try openDirectory(parentPath), last)
    }

    /// Opens the regular file `name` of `dir` with `flags` (e.g. `O_RDONLY`) without following a
    /// symbolic link and without opening anything else (a FIFO or a device node would block or act):
    /// first as `O_PATH`, then, once it is known to be a regular file, through `/proc/self/fd`.
    /// Refuses other types with `EINVAL`. Returns the descriptor and the file's status.
    func openRegularFile(_ name: FileName, in dir: Int32, flags: Int32) throws -> (fd: Int32, status: stat) {
        let pathFD = try during("open '\(name)'") {
            try name.withCString { name in try sys { openat(dir, name, clinux_O_PATH | O_NOFOLLOW | O_CLOEXEC) } }
        }
        defer { close(pathFD) }
        var st = stat()
        try sys { fstatat(pathFD, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw RefusedOperation(code: EINVAL, explanation: "'\(name)' is not a regular file (mode \(String(st.st_mode, radix: 8)))")
        }
        let fd = try during("reopen '\(name)'") {
            try withProcPath(pathFD) { path in try sys { open(path, flags | O_CLOEXEC) } }
        }
        return (fd, st)
    }

    private func components(of path: RelativePath) throws -> [FileName] {
        try path.bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { component in
            guard let name = FileName(bytes: component) else {
                throw RefusedOperation(code: EINVAL, explanation: "invalid path component in \(path)")
            }
            return name
        }
    }
}
