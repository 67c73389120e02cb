import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// Making one listed entry of a directory what the resync's source has: the right type under
/// the name, the right inode for hard links, then the listed attributes.
extension ReplicaApplier {
    /// Settles `entry` in `dir` (the directory at `path`, nil for the root):
    ///
    /// - a later name of a link key becomes a hard link to the first name materialized in this
    ///   resync, unless it already is the same inode (if the first name is gone, or is no longer
    ///   of the entry's type, this name becomes the first);
    /// - otherwise an entry of another type (another symlink target, another device number) is
    ///   removed, a missing one created, and an existing inode with several names on this copy
    ///   claimed for this entry's link key, or given its own copy if another key claimed it;
    /// - then ``settleAttributes(_:of:status:)``, except for a regular file that was already
    ///   there: its size and attributes come with `resyncFile`, sent under the file's own lock on
    ///   the source (a listing's size could be older than a live write already applied here).
    ///   A regular file created here stays empty until its regions and `resyncFile` arrive: sized
    ///   now, it would look like a full copy of zeros, and the checksum comparison would hash
    ///   every region on both sides instead of learning at once that all of them are missing.
    ///
    /// Whatever is removed or replaced has its node ids unbound.
    func settleEntry(_ entry: ManifestEntry, in dir: DirectoryHandle, directory path: RelativePath?) throws {
        let kind = try EntryKind(entry)
        let name = entry.name
        let here = ResyncSession.Name(directory: path, name: name)
        var existing = try status(of: name, in: dir.fd)
        var materialized = false
        var createdEmpty = false
        if entry.linkKey != 0, let first = resync.firstNames[entry.linkKey], first != here,
           let located = try locate(first, as: kind) {
            defer { located.directory.close() }
            if existing.map(InodeKey.init) != InodeKey(located.status) {
                if let current = existing { try removeEntry(name, in: dir.fd, status: current) }
                materialized = true
                try during("link '\(name)' to '\(describe(first))'") {
                    try first.name.withCString { firstName in
                        try name.withCString { name in try sys { linkat(located.directory.fd, firstName, dir.fd, name, 0) } }
                    }
                }
            }
        } else {
            if let current = existing, try !kind.matches(current, name: name, in: dir.fd) {
                try removeEntry(name, in: dir.fd, status: current)
                existing = nil
            }
            if let current = existing {
                if kind != .directory, current.st_nlink > 1 {
                    try claim(current, for: entry, name: name, in: dir.fd, kind: kind)
                }
            } else {
                try kind.create(name, in: dir.fd)
                materialized = true
                createdEmpty = kind == .regular
            }
            if entry.linkKey != 0 { resync.firstNames[entry.linkKey] = here }
        }
        let fd = try during("open '\(name)'") {
            try name.withCString { name in try sys { openat(dir.fd, name, clinux_O_PATH | O_NOFOLLOW | O_CLOEXEC) } }
        }
        defer { close(fd) }
        var st = stat()
        try sys { fstatat(fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        guard st.st_mode & S_IFMT == kind.type else {
            throw RefusedOperation(code: EIO, explanation: "'\(name)' changed type while being settled")
        }
        if kind == .regular && !materialized { return }
        var attributes = entry.attributes
        if createdEmpty { attributes.size = 0 }
        try settleAttributes(attributes, of: fd, status: st)
    }

    /// The status of `name` in `dir`, not following a symbolic link; nil if there is no such entry.
    func status(of name: FileName, in dir: Int32) throws -> stat? {
        var st = stat()
        let (result, code) = name.withCString { name in
            let result = fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW)
            return (result, errno)
        }
        if result == 0 { return st }
        if code == ENOENT { return nil }
        throw StepFailure(code: code, step: "stat '\(name)'", reason: "\(FSError(code))")
    }

    /// An existing inode that has other names on this copy: the first listed name to keep it
    /// claims it for its link key; a name listed under another key (0 included: a file with
    /// one name on the source) gets a copy of its own.
    private func claim(_ status: stat, for entry: ManifestEntry, name: FileName, in dir: Int32, kind: EntryKind) throws {
        let inode = InodeKey(status)
        if let owner = resync.claims[inode], owner == 0 || owner != entry.linkKey {
            try separate(name, in: dir, status: status, kind: kind)
        } else {
            resync.claims[inode] = entry.linkKey
        }
    }

    /// The directory and status of a link key's first name, if it still exists with `kind`'s type.
    private func locate(_ first: ResyncSession.Name, as kind: EntryKind) throws -> (directory: DirectoryHandle, status: stat)? {
        let directory: DirectoryHandle
        do {
            directory = try openDirectory(first.directory)
        } catch where [ENOENT, ENOTDIR].contains(errnoCode(of: error)) {
            return nil
        }
        let st: stat?
        do {
            st = try status(of: first.name, in: directory.fd)
        } catch {
            directory.close()
            throw error
        }
        guard let st, st.st_mode & S_IFMT == kind.type else {
            directory.close()
            return nil
        }
        return (directory, st)
    }

    private func describe(_ name: ResyncSession.Name) -> String {
        name.directory.map { "\($0)/\(name.name)" } ?? "\(name.name)"
    }
}
