import Foundation
import Glibc
import TestSupport
import XCTest

/// Fails the test loudly (never skips) where a real mount is impossible: these tests need root
/// and /dev/fuse, which CI has.
func requireMountPrivileges(file: StaticString = #filePath, line: UInt = #line) throws {
    guard geteuid() == 0 else {
        XCTFail("ReplFS tests mount real filesystems and must run as root", file: file, line: line)
        throw XCTSkip("unreachable")
    }
    guard access("/dev/fuse", F_OK) == 0 else {
        XCTFail("/dev/fuse is missing: these tests need FUSE (apt-get install fuse3; modprobe fuse)", file: file, line: line)
        throw XCTSkip("unreachable")
    }
}

/// A ReplFS daemon mounted over a directory, started in the foreground as a child process and
/// stopped by PID when the test ends, whatever happened.
final class ReplFSMount {
    let directory: String
    let process: Process
    private(set) var stopped = false

    /// Mounts ReplFS over `directory` and waits until the mount answers.
    init(over directory: String, extraArguments: [String] = []) throws {
        self.directory = directory
        var backing = stat()
        guard stat(directory, &backing) == 0 else { throw TestFailure("cannot stat \(directory)") }
        process = Process()
        process.executableURL = URL(fileURLWithPath: mirrorExecutable)
        process.arguments = ["mount", "--dir", directory, "--foreground"] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.standardError
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            var st = stat()
            if !process.isRunning { throw TestFailure("mirror mount exited with \(process.terminationStatus) before mounting") }
            if stat(directory, &st) == 0, st.st_dev != backing.st_dev { return }
            usleep(20_000)
        }
        stop()
        throw TestFailure("ReplFS did not answer at \(directory) within 30 s")
    }

    var pid: pid_t { process.processIdentifier }

    /// Unmounts through the CLI and waits for the daemon to exit; kills it by PID if it does not.
    func stop() {
        guard !stopped else { return }
        stopped = true
        if process.isRunning {
            _ = try? runCommand([mirrorExecutable, "umount", "--dir", directory], timeout: 30)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning {
                kill(pid, SIGKILL)
                process.waitUntilExit()
            }
        }
        // A daemon killed above leaves a dead mount behind: detach it.
        if isReplFSMounted(directory) { umount2(directory, Int32(MNT_DETACH)) }
    }

    deinit { stop() }
}

/// Whether a ReplFS mount (live or dead) sits at `path`.
func isReplFSMounted(_ path: String) -> Bool {
    guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
    return text.split(separator: "\n").contains { line in
        let fields = line.split(separator: " ")
        guard fields.count > 4, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { return false }
        return fields[4] == path && fields[dash + 1] == "fuse.replfs"
    }
}

/// Polls until process `pid` has exited; false on timeout.
@discardableResult
func waitForProcessExit(_ pid: pid_t, timeout: TimeInterval) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while processIsAlive(pid) {
        if Date() >= deadline { return false }
        usleep(20_000)
    }
    return true
}

/// The non-empty lines of a command's output.
func nonEmptyLines(_ text: String) -> [String] {
    text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
}
