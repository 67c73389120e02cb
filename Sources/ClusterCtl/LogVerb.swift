import ArgumentParser
import ControlChannel
import Glibc

/// `log [-m NAME] [-f]`.
struct LogVerb: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "The daemon's log (of one module with -m); -f follows it until interrupted.")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption

    @Flag(name: .shortAndLong, help: "Print the last lines of this node's log file, then what is added to it, until interrupted.")
    var follow = false

    func validate() throws {
        if follow, root.host != nil {
            throw ValidationError("log -f follows this node's log file: run it on that node, without -H")
        }
    }

    func run() throws {
        let response = try root.send(ControlRequest(verb: "log", module: module.name))
        guard follow, response.ok, !root.json else { return try root.finish(response) }
        guard let path = response.logFile else {
            Output.error("the daemon did not name its log file")
            throw ExitCode(1)
        }
        do {
            try LogFollower(path: path).run()
        } catch let error as LogFollower.Failure {
            Output.error(error.description)
            throw ExitCode(1)
        }
    }
}

/// `tail -f` for one file: its last lines, then whatever is appended, also across a rotation
/// (the path names a new file) or a truncation; until the process is interrupted.
struct LogFollower {
    /// Why the file cannot be followed.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let path: String
    /// Lines shown before following.
    var lastLines = 10

    func run() throws -> Never {
        var fd = try open()
        showTail(of: fd)
        while true {
            copyNew(from: fd)
            usleep(250_000)
            var current = stat(), named = stat()
            guard fstat(fd, &current) == 0 else { continue }
            if stat(path, &named) == 0, named.st_ino != current.st_ino || named.st_dev != current.st_dev {
                // Rotated: what was added to the old file before the rename is shown first.
                let next = Glibc.open(path, O_RDONLY | O_CLOEXEC)
                guard next >= 0 else { continue }
                copyNew(from: fd)
                close(fd)
                fd = next
            } else if current.st_size < lseek(fd, 0, SEEK_CUR) {
                lseek(fd, 0, SEEK_SET)
            }
        }
    }

    /// Copies what `fd` has from its offset to the end, to standard output.
    private func copyNew(from fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { return }
            Output.write(1, chunk[..<count])
        }
    }

    private func open() throws -> Int32 {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "cannot read the log file \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Prints the last `lastLines` lines and leaves `fd` at the end of the file.
    private func showTail(of fd: Int32) {
        let end = lseek(fd, 0, SEEK_END)
        let start = max(0, end - 64 * 1024)
        var bytes = [UInt8](repeating: 0, count: Int(end - start))
        let count = pread(fd, &bytes, bytes.count, start)
        guard count > 0 else { return }
        var tail = bytes[..<count]
        var newlines = 0
        for index in tail.indices.reversed().dropFirst() where tail[index] == UInt8(ascii: "\n") {
            newlines += 1
            if newlines == lastLines {
                tail = tail[(index + 1)...]
                break
            }
        }
        Output.write(1, tail)
    }
}
