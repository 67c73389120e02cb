import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// `resyncDirectory`: making a directory of this copy hold exactly the entries the source listed.
extension ReplicaApplier {
    /// Applies one part of a directory's listing.
    ///
    /// Every part settles its entries (``settleEntry(_:in:directory:)``). The names listed are
    /// accumulated over the parts (0, 1, 2... in order; a part 0 starts the listing over); the
    /// part with `isLast` then removes every entry listed in no part, and sets the directory's
    /// own attributes last (creating and removing entries changed its times).
    ///
    /// An entry that fails does not stop the others: the part throws afterwards, with the
    /// first failure's errno and how many entries failed. A failure to reach the directory
    /// (missing, not a directory, a symbolic link on the way), a part out of order or
    /// directory attributes that are not a directory's fail the whole part, and drop what
    /// earlier parts accumulated, so nothing is removed on an incomplete listing.
    func apply(_ manifest: DirectoryManifest) throws {
        let pending = resync.listings.removeValue(forKey: manifest.path)
        guard mode_t(manifest.attributes.mode) & S_IFMT == S_IFDIR else {
            throw RefusedOperation(code: EINVAL, explanation:
                "the directory's own attributes have mode \(String(manifest.attributes.mode, radix: 8)), not a directory's")
        }
        var listing = ResyncSession.PendingListing()
        if manifest.part != 0 {
            guard let pending, pending.nextPart == manifest.part else {
                let expected = pending.map { "part \($0.nextPart)" } ?? "part 0"
                throw RefusedOperation(code: EINVAL, explanation: "part \(manifest.part) arrived where \(expected) was expected")
            }
            listing = pending
        }
        let dir = try openDirectory(manifest.path)
        defer { dir.close() }
        var failures = EntryFailures()
        for entry in manifest.entries {
            guard listing.names.insert(entry.name).inserted else {
                failures.add("entry '\(entry.name)'", RefusedOperation(code: EINVAL, explanation: "listed twice"))
                continue
            }
            do {
                try settleEntry(entry, in: dir, directory: manifest.path)
            } catch {
                failures.add("entry '\(entry.name)'", error)
            }
        }
        if manifest.isLast {
            removeUnlisted(keeping: listing.names, in: dir, failures: &failures)
            do {
                var st = stat()
                try sys { fstatat(dir.fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
                try settleAttributes(manifest.attributes, of: dir.fd, status: st)
            } catch {
                failures.add("the directory's own attributes", error)
            }
        } else {
            listing.nextPart = manifest.part + 1
            resync.listings[manifest.path] = listing
        }
        try failures.throwIfAny()
    }

    /// Removes every entry of `dir` whose name is not in `listed`, directories with all they hold.
    private func removeUnlisted(keeping listed: Set<FileName>, in dir: DirectoryHandle, failures: inout EntryFailures) {
        let present: [FileName]
        do {
            present = try during("read the directory") { try DirectoryStream(nil, in: dir.fd).allNames() }
        } catch {
            return failures.add("removing unlisted entries", error)
        }
        for name in present where !listed.contains(name) {
            do {
                if let st = try status(of: name, in: dir.fd) { try removeEntry(name, in: dir.fd, status: st) }
            } catch {
                failures.add("unlisted entry '\(name)'", error)
            }
        }
    }
}

/// Failures of single entries of one manifest part (the other entries were applied all the
/// same): the first one's errno and description, and how many there were.
struct EntryFailures: ErrnoCarrying, CustomStringConvertible {
    private var first: (what: String, error: Error)?
    private(set) var count = 0

    var code: Int32 { first.map { errnoCode(of: $0.error) } ?? 0 }

    var description: String {
        guard let first else { return "no failure" }
        let more = count > 1 ? " (and \(count - 1) more failures in this part)" : ""
        return "\(first.what): \(first.error)\(more)"
    }

    mutating func add(_ what: String, _ error: Error) {
        if first == nil { first = (what, error) }
        count += 1
    }

    func throwIfAny() throws {
        if count > 0 { throw self }
    }
}
