import Glibc
import ReplFS
import ReplProtocol

/// The resync's session and file times; directory listings are in ManifestApplier.swift,
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

    /// Sets the access and modification times of the entry at the path (of any type; a
    /// symbolic link's own times).
    func apply(_ message: ResyncTimes) throws {
        let (dir, name) = try openParent(of: message.path)
        defer { dir.close() }
        var times = [timespec(.set(message.accessTime)), timespec(.set(message.modificationTime))]
        try name.withCString { name in try sys { utimensat(dir.fd, name, &times, AT_SYMLINK_NOFOLLOW) } }
    }
}
