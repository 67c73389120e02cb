import Glibc

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

    /// Creates the file (or rewrites it) with `reason` and the time.
    func set(_ reason: String) throws {
        let text = "\(reason) at \(time(nil)) (daemon pid \(getpid()))\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateFileError(path: path, problem: "cannot be written: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard write(fd, text, text.utf8.count) == text.utf8.count else {
            throw StateFileError(path: path, problem: "cannot be written: \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the file; nothing to do when it is absent.
    func clear() throws {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw StateFileError(path: path, problem: "cannot be removed: \(String(cString: strerror(errno)))")
        }
    }
}
