import Glibc
import ReplFS

/// A fact about the module on this node that must survive the daemon, kept as the presence of
/// a file in the module's state directory (`STATE_DIR/MODULE/NAME`), its text saying when and why.
///
/// The cluster daemon keeps two: `application-running` (the start script ran and the stop script
/// has not succeeded since: a daemon that finds it at start stops what its dead predecessor left)
/// and `following-peer` (the copy was last mounted read-only, following the peer: a daemon that
/// finds it at start does not count the copy up to date, since the peer may have served alone
/// since then).
struct MarkerFile {
    let path: String

    init(directory: String, name: String) {
        path = directory + "/" + name
    }

    var isPresent: Bool { access(path, F_OK) == 0 }

    /// Creates the file (or rewrites it) with `reason` and the time, durably: the marker must
    /// survive the power loss it is there for.
    func set(_ reason: String) throws {
        try GenerationStore.writeAtomically("\(reason) at \(time(nil)) (daemon pid \(getpid()))\n", to: path)
    }

    /// Removes the file; nothing to do when it is absent.
    func clear() throws {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw StateFileError(path: path, problem: "cannot be removed: \(FSError.last)")
        }
    }
}
