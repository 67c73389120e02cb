import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// The resync's session and files' attributes; directory listings are in ManifestApplier.swift,
/// regions with the other contents, checksum answers in ReplicaApplier+Checksums.swift.
extension ReplicaApplier {
    /// Starts a resync's state afresh: hard-link first names, link claims, partial listings.
    /// (The daemon records that the copy is not up to date; the applier keeps no generations.)
    func apply(_ message: ResyncBegin) {
        resync = ResyncSession()
    }

    /// Clears the resync's state. Refused with `EINVAL` (the state cleared all the same) if a
    /// directory listing is still waiting for its last part: its unlisted entries were never
    /// removed, so the copy is not the source's.
    func apply(_ message: ResyncEnd) throws {
        let incomplete = resync.listings.keys.map { $0.map { "'\($0)'" } ?? "the module root" }.sorted()
        resync = ResyncSession()
        guard incomplete.isEmpty else {
            throw RefusedOperation(code: EINVAL, explanation:
                "the listing of \(incomplete.prefix(5).joined(separator: ", "))\(incomplete.count > 5 ? " and \(incomplete.count - 5) more" : "") never got its last part")
        }
    }

    /// Sets a regular file's size, owner, extended attributes, mode and times (see
    /// ``settleAttributes(_:of:status:)``), after the resync's regions for it; anything but a
    /// regular file at the path is refused with `EINVAL`.
    func apply(_ message: ResyncFile) throws {
        let (dir, name) = try openParent(of: message.path)
        defer { dir.close() }
        let fd = try name.withCString { name in try sys { openat(dir.fd, name, clinux_O_PATH | O_NOFOLLOW | O_CLOEXEC) } }
        defer { close(fd) }
        var st = stat()
        try sys { fstatat(fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw RefusedOperation(code: EINVAL, explanation: "'\(message.path)' is not a regular file here")
        }
        try settleAttributes(message.attributes, of: fd, status: st)
    }
}
