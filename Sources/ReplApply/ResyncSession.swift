import ReplProtocol

/// What the target of one resync remembers between messages; reset by `resyncBegin`, cleared
/// by `resyncEnd`.
struct ResyncSession {
    /// One name of the module: a directory (nil: the root) and an entry of it.
    struct Name: Hashable {
        let directory: RelativePath?
        let name: FileName
    }

    /// The names of a directory listed by the parts received so far, and the part expected next.
    struct PendingListing {
        var nextPart: UInt32 = 0
        var names: Set<FileName> = []
    }

    /// For each link key, the first name materialized; later names of the key become hard links to it.
    var firstNames: [UInt64: Name] = [:]
    /// Inodes with several names on this copy, each claimed by the first listed name that kept
    /// it: by its link key, or 0 for a file with one name. Another name of a claimed inode
    /// listed under another key (or under 0) gets its own copy of the file.
    var claims: [InodeKey: UInt64] = [:]
    /// Directories whose listing came in parts and whose last part has not arrived yet.
    var listings: [RelativePath?: PendingListing] = [:]
}
