import Glibc

/// Whether this node's daemon started the module's application and has not stopped it: the file
/// `application-running` in the module's state directory, written before the start script runs
/// and removed once the stop script succeeded.
///
/// A daemon that finds it when it starts knows that its predecessor died (kill -9, a crash)
/// while the application ran here, an application that may still run, on a dead mount and
/// perhaps holding its ports: it runs the stop script before anything else.
struct ApplicationMarker {
    let path: String

    init(directory: String) {
        path = directory + "/application-running"
    }

    var isPresent: Bool { access(path, F_OK) == 0 }

    /// Records that the start script is about to run.
    func set() throws {
        let text = "the start script ran at \(time(nil)) (daemon pid \(getpid()))\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateFileError(path: path, problem: "cannot be written: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard write(fd, text, text.utf8.count) == text.utf8.count else {
            throw StateFileError(path: path, problem: "cannot be written: \(String(cString: strerror(errno)))")
        }
    }

    /// Records that the stop script succeeded.
    func clear() throws {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw StateFileError(path: path, problem: "cannot be removed: \(String(cString: strerror(errno)))")
        }
    }
}
