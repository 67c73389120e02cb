import Foundation
import Glibc
import XCTest
import TestSupport

/// The `mirror` command as an operator meets it: refusals are one clear line on stderr with a
/// non-zero status; the background daemon, signals, a killed daemon and its stale mount.
final class CommandLineTests: XCTestCase {
    // MARK: Refusals

    func testMountOfMissingDirectoryIsRefused() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-missing")
        defer { withExtendedLifetime(scratch) {} }
        let missing = scratch.path + "/missing"
        defer { detachAnyReplFS(at: missing) }
        expectRefusal(["mount", "--dir", missing, "--log-file", scratch.path + "/mirror.log"],
                      mentions: ["\(missing) does not exist"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing), "mirror mount created the missing directory")
    }

    func testMountOfRegularFileIsRefused() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-file")
        defer { withExtendedLifetime(scratch) {} }
        let file = scratch.path + "/plain.txt"
        try "content\n".write(toFile: file, atomically: false, encoding: .utf8)
        defer { detachAnyReplFS(at: file) }
        expectRefusal(["mount", "--dir", file, "--log-file", scratch.path + "/mirror.log"],
                      mentions: ["\(file) is not a directory"])
        XCTAssertFalse(isReplFSMounted(file))
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "content\n")
    }

    func testMountOfDirectoryAlreadyMountedIsRefused() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-twice")
        defer { withExtendedLifetime(scratch) {} }
        let dir = try scratch.sub("data")
        try "kept\n".write(toFile: dir + "/kept.txt", atomically: false, encoding: .utf8)
        let mount = try ReplFSMount(over: dir)
        defer { mount.stop() }
        expectRefusal(["mount", "--dir", dir, "--log-file", scratch.path + "/mirror.log"],
                      mentions: ["\(dir) is already mounted by ReplFS", "mirror umount --dir \(dir)"])
        XCTAssertEqual(replFSMountCount(at: dir), 1, "a second ReplFS mount was stacked on \(dir)")
        XCTAssertTrue(mount.process.isRunning, "the first daemon died")
        XCTAssertEqual(try String(contentsOfFile: dir + "/kept.txt", encoding: .utf8), "kept\n")
    }

    /// In the foreground (tests, systemd) a refusal must read as one line too.
    func testForegroundRefusalIsOneLine() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-foreground")
        defer { withExtendedLifetime(scratch) {} }
        let missing = scratch.path + "/missing"
        defer { detachAnyReplFS(at: missing) }
        expectRefusal(["mount", "--dir", missing, "--foreground"], mentions: ["\(missing) does not exist"])
    }

    /// Non-root: mount and umount both refuse, and a root-owned mount survives nobody's umount.
    func testNonRootIsRefused() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-nonroot")
        defer { withExtendedLifetime(scratch) {} }
        let nobodyHome = try scratch.sub("nobody")
        XCTAssertEqual(chown(nobodyHome, 65534, 65534), 0)
        let dir = try scratch.sub("data")
        defer { detachAnyReplFS(at: dir) }
        expectRefusal(["mount", "--dir", dir, "--log-file", nobodyHome + "/mirror.log"], asNobody: true,
                      mentions: ["must run as root"])
        expectRefusal(["mount", "--dir", dir, "--foreground"], asNobody: true, mentions: ["must run as root"],
                      checkLineCount: false) // the foreground line count has its own test
        XCTAssertFalse(isReplFSMounted(dir))

        let mounted = try scratch.sub("mounted")
        let mount = try ReplFSMount(over: mounted)
        defer { mount.stop() }
        expectRefusal(["umount", "--dir", mounted], asNobody: true, mentions: ["must run as root"])
        expectRefusal(["umount", "--dir", mounted, "--lazy"], asNobody: true, mentions: ["must run as root"])
        XCTAssertTrue(isReplFSMounted(mounted), "a non-root user unmounted ReplFS")
        XCTAssertTrue(mount.process.isRunning)
    }

    /// What a non-root operator meets first, with the default log file, is the real reason.
    func testNonRootMountWithDefaultLogFileSaysRootIsNeeded() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-nonroot-log")
        defer { withExtendedLifetime(scratch) {} }
        let dir = try scratch.sub("data")
        defer { detachAnyReplFS(at: dir) }
        expectRefusal(["mount", "--dir", dir], asNobody: true, mentions: ["must run as root"])
        XCTAssertFalse(isReplFSMounted(dir))
    }

    func testUmountOfDirectoryThatIsNotAReplFSMountIsRefused() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-notmounted")
        defer { withExtendedLifetime(scratch) {} }
        let plain = try scratch.sub("plain")
        expectRefusal(["umount", "--dir", plain], mentions: ["\(plain) is not a ReplFS mount"])
        expectRefusal(["umount", "--dir", plain, "--lazy"], mentions: ["\(plain) is not a ReplFS mount"])

        // Another filesystem's mount is not ReplFS's to remove, even lazily.
        let foreign = try scratch.sub("tmpfs")
        guard mount("tmpfs", foreign, "tmpfs", 0, "size=1m") == 0 else {
            return XCTFail("cannot mount a tmpfs for the test: \(String(cString: strerror(errno)))")
        }
        defer { umount2(foreign, Int32(MNT_DETACH)) }
        expectRefusal(["umount", "--dir", foreign], mentions: ["\(foreign) is not a ReplFS mount"])
        expectRefusal(["umount", "--dir", foreign, "--lazy"], mentions: ["\(foreign) is not a ReplFS mount"])
        XCTAssertEqual(mountTypes(at: foreign), ["tmpfs"], "mirror umount touched a foreign mount")
    }

    func testUmountWhileFileIsOpenIsBusyAndLazyDetaches() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-busy")
        defer { withExtendedLifetime(scratch) {} }
        let dir = try scratch.sub("data")
        try "held\n".write(toFile: dir + "/held.txt", atomically: false, encoding: .utf8)
        let mount = try ReplFSMount(over: dir)
        defer { mount.stop() }
        var fd = open(dir + "/held.txt", O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0, "open on the mount: \(String(cString: strerror(errno)))")
        defer { if fd >= 0 { close(fd) } }

        expectRefusal(["umount", "--dir", dir], mentions: ["\(dir) is busy", "--lazy"])
        XCTAssertTrue(isReplFSMounted(dir), "a busy umount removed the mount")
        XCTAssertTrue(mount.process.isRunning, "the daemon died on a refused umount")
        XCTAssertEqual(readAll(fd), "held\n")

        let lazy = try runSpawned([mirrorExecutable, "umount", "--dir", dir, "--lazy"], timeout: 60)
        XCTAssertEqual(lazy.status, 0, "umount --lazy failed: \(lazy.error)")
        XCTAssertEqual(lazy.error, "")
        XCTAssertFalse(isReplFSMounted(dir), "umount --lazy left the mount in place")
        XCTAssertEqual(readAll(fd), "held\n", "a file held open must stay usable after a lazy unmount")

        close(fd)
        fd = -1
        let deadline = Date().addingTimeInterval(10)
        while mount.process.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(mount.process.isRunning, "the daemon did not exit once the last file was closed")
        if !mount.process.isRunning {
            XCTAssertEqual(mount.process.terminationStatus, 0, "daemon exit status")
        }
        XCTAssertEqual(try String(contentsOfFile: dir + "/held.txt", encoding: .utf8), "held\n")
    }

    // MARK: The background daemon

    func testDaemonModeReturnsOnceTheMountAnswers() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-daemon")
        defer { withExtendedLifetime(scratch) {} }
        let dir = try scratch.sub("data")
        let logFile = scratch.path + "/mirror.log"
        try "written before mounting\n".write(toFile: dir + "/before.txt", atomically: false, encoding: .utf8)
        var backing = stat()
        XCTAssertEqual(stat(dir, &backing), 0)

        let (result, pid) = try startDaemon(over: dir, logFile: logFile)
        defer { stopDaemon(pid, mountedOver: dir) }
        // No waiting: the command returned, so the mount answers.
        XCTAssertTrue(isReplFSMounted(dir), "mirror mount returned before the mount appeared")
        var served = stat()
        XCTAssertEqual(stat(dir, &served), 0)
        XCTAssertNotEqual(served.st_dev, backing.st_dev, "\(dir) is not served by ReplFS yet")
        XCTAssertEqual(try? String(contentsOfFile: dir + "/before.txt", encoding: .utf8), "written before mounting\n")
        XCTAssertEqual(nonEmptyLines(result.output), ["ReplFS daemon running (pid \(pid), log \(logFile))"])
        XCTAssertEqual(result.error, "", "mirror mount wrote to stderr")
        XCTAssertTrue(processIsAlive(pid), "the daemon is not running")
        XCTAssertEqual(getsid(pid), pid, "the daemon did not start its own session")

        try "written through the mount\n".write(toFile: dir + "/during.txt", atomically: false, encoding: .utf8)
        let umount = try runSpawned([mirrorExecutable, "umount", "--dir", dir], timeout: 60)
        XCTAssertEqual(umount.status, 0, "mirror umount failed: \(umount.error)")
        XCTAssertEqual(umount.error, "")
        XCTAssertTrue(waitForProcessExit(pid, timeout: 10), "the daemon \(pid) did not exit after mirror umount")
        XCTAssertFalse(isReplFSMounted(dir))
        XCTAssertEqual(try String(contentsOfFile: dir + "/before.txt", encoding: .utf8), "written before mounting\n")
        XCTAssertEqual(try String(contentsOfFile: dir + "/during.txt", encoding: .utf8), "written through the mount\n")
        let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("mounted \(dir) (pid \(pid)"), "log lacks the mount:\n\(log)")
        XCTAssertTrue(log.contains("unmounted"), "log lacks the unmount:\n\(log)")
    }

    /// The background daemon keeps none of the descriptors of whoever ran `mirror mount`: a
    /// caller waiting for EOF on a pipe it handed down (as Foundation.Process and shell scripts
    /// do) must not wait for the daemon, nor may the daemon keep the caller's files busy.
    func testDaemonKeepsNoDescriptorOfItsInvoker() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-fds")
        defer { withExtendedLifetime(scratch) {} }
        let dir = try scratch.sub("data")
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } // only the spawned command gets it, as fd 7
        var writeEnd = ends[1]
        defer { close(ends[0]); if writeEnd >= 0 { close(writeEnd) } }
        var pipeStat = stat()
        XCTAssertEqual(fstat(ends[0], &pipeStat), 0)

        let result = try runSpawned([mirrorExecutable, "mount", "--dir", dir, "--log-file", scratch.path + "/mirror.log"],
                                    passing: [7: writeEnd], timeout: 60)
        close(writeEnd)
        writeEnd = -1
        guard let pid = Self.daemonPID(in: result.output) else {
            detachAnyReplFS(at: dir)
            return XCTFail("mirror mount exited \(result.status) without a daemon: \(result.error)")
        }
        defer { stopDaemon(pid, mountedOver: dir) }
        XCTAssertEqual(result.status, 0, result.error)

        // The command has exited: if the pipe does not reach EOF, the daemon holds its write end.
        var poller = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, 3000)
        var byte: UInt8 = 0
        let eof = ready == 1 && read(ends[0], &byte, 1) == 0
        let pipeName = "pipe:[\(pipeStat.st_ino)]"
        let held = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { fd -> String? in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? ""
            return target == pipeName ? "fd \(fd) -> \(target)" : nil
        }
        XCTAssertTrue(eof, "the invoker's pipe never reached EOF after mirror mount returned")
        XCTAssertEqual(held, [], "the daemon (pid \(pid)) kept the descriptor its invoker passed to mirror mount")
    }

    /// SIGTERM (and SIGINT, SIGHUP) end a foreground daemon cleanly: it unmounts and exits 0.
    func testTerminationSignalUnmountsCleanly() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-signal")
        defer { withExtendedLifetime(scratch) {} }
        let dir = try scratch.sub("data")
        try "before\n".write(toFile: dir + "/before.txt", atomically: false, encoding: .utf8)
        var backing = stat()
        XCTAssertEqual(stat(dir, &backing), 0)
        for (signal, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT"), (SIGHUP, "SIGHUP")] {
            let mount = try ReplFSMount(over: dir)
            defer { mount.stop() }
            try "\(name)\n".write(toFile: dir + "/\(name).txt", atomically: false, encoding: .utf8)
            XCTAssertEqual(kill(mount.pid, signal), 0)
            let deadline = Date().addingTimeInterval(10)
            while mount.process.isRunning && Date() < deadline { usleep(20_000) }
            XCTAssertFalse(mount.process.isRunning, "\(name): the daemon did not exit")
            if !mount.process.isRunning {
                XCTAssertEqual(mount.process.terminationReason, .exit, "\(name): the daemon died of the signal")
                XCTAssertEqual(mount.process.terminationStatus, 0, "\(name): daemon exit status")
            }
            XCTAssertFalse(isReplFSMounted(dir), "\(name): the mount is still there")
            var st = stat()
            XCTAssertEqual(stat(dir, &st), 0, "\(name): stat after exit: \(String(cString: strerror(errno)))")
            XCTAssertEqual(st.st_dev, backing.st_dev, "\(name): \(dir) is not the plain directory again")
            XCTAssertEqual(try String(contentsOfFile: dir + "/before.txt", encoding: .utf8), "before\n")
            XCTAssertEqual(try String(contentsOfFile: dir + "/\(name).txt", encoding: .utf8), "\(name)\n")
        }
    }

    func testKilledDaemonLeavesStaleMountThatNextMountRecovers() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("cli-stale")
        defer { withExtendedLifetime(scratch) {} }
        let dir = try scratch.sub("data")
        let logFile = scratch.path + "/mirror.log"
        try "before\n".write(toFile: dir + "/before.txt", atomically: false, encoding: .utf8)
        var backing = stat()
        XCTAssertEqual(stat(dir, &backing), 0)
        let killed = try ReplFSMount(over: dir)
        defer { killed.stop() }
        try "during\n".write(toFile: dir + "/during.txt", atomically: false, encoding: .utf8)
        XCTAssertEqual(kill(killed.pid, SIGKILL), 0)
        killed.process.waitUntilExit()

        var st = stat()
        let rc = stat(dir, &st)
        let code = errno
        XCTAssertEqual(rc, -1, "stat on the dead mount succeeded")
        XCTAssertEqual(code, ENOTCONN, "stat on the dead mount: \(String(cString: strerror(code)))")
        XCTAssertEqual(String(cString: strerror(code)), "Transport endpoint is not connected")
        XCTAssertTrue(isReplFSMounted(dir), "the dead mount is not listed")

        let (result, pid) = try startDaemon(over: dir, logFile: logFile)
        defer { stopDaemon(pid, mountedOver: dir) } // runs before killed.stop()
        XCTAssertEqual(result.error, "")
        XCTAssertEqual(replFSMountCount(at: dir), 1, "the stale mount was not detached:\n\(mountTypes(at: dir))")
        XCTAssertEqual(stat(dir, &st), 0, "stat after recovery: \(String(cString: strerror(errno)))")
        XCTAssertNotEqual(st.st_dev, backing.st_dev, "\(dir) is not served by ReplFS after recovery")
        XCTAssertEqual(try? String(contentsOfFile: dir + "/before.txt", encoding: .utf8), "before\n")
        XCTAssertEqual(try? String(contentsOfFile: dir + "/during.txt", encoding: .utf8), "during\n")
        let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("\(dir): stale ReplFS mount found"), "log lacks the stale mount:\n\(log)")
        XCTAssertTrue(log.contains("detaching it"), "log lacks the detach:\n\(log)")
        XCTAssertTrue(log.contains("mounted \(dir) (pid \(pid)"), "log lacks the new mount:\n\(log)")

        let umount = try runSpawned([mirrorExecutable, "umount", "--dir", dir], timeout: 60)
        XCTAssertEqual(umount.status, 0, "mirror umount failed: \(umount.error)")
        XCTAssertTrue(waitForProcessExit(pid, timeout: 10), "the daemon \(pid) did not exit after mirror umount")
        XCTAssertEqual(replFSMountCount(at: dir), 0)
        XCTAssertEqual(try String(contentsOfFile: dir + "/during.txt", encoding: .utf8), "during\n")
    }

    // MARK: Helpers

    /// Runs `mirror ARGUMENTS` and expects a refusal: non-zero status, nothing on stdout, and one
    /// line on stderr ("Error: ...") holding every fragment. A daemon it started anyway is stopped.
    private func expectRefusal(_ arguments: [String], asNobody: Bool = false, mentions fragments: [String],
                               checkLineCount: Bool = true, file: StaticString = #filePath, line: UInt = #line) {
        let prefix = asNobody ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []
        let what = (asNobody ? "(as nobody) " : "") + "mirror " + arguments.joined(separator: " ")
        let result: CommandResult
        do {
            result = try runSpawned(prefix + [mirrorExecutable] + arguments, timeout: 30)
        } catch {
            return XCTFail("\(what): \(error)", file: file, line: line)
        }
        if let pid = Self.daemonPID(in: result.output), let dir = arguments.firstIndex(of: "--dir").map({ arguments[$0 + 1] }) {
            stopDaemon(pid, mountedOver: dir)
        }
        XCTAssertNotEqual(result.status, 0, "\(what) succeeded; stdout: \(result.output)", file: file, line: line)
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "",
                       "\(what): nothing expected on stdout", file: file, line: line)
        let lines = nonEmptyLines(result.error)
        if checkLineCount {
            XCTAssertEqual(lines.count, 1, "\(what): expected one line on stderr, got \(lines.count):\n\(result.error)",
                           file: file, line: line)
        }
        guard let message = lines.last else { // the refusal itself, even behind extra lines
            return XCTFail("\(what): nothing on stderr", file: file, line: line)
        }
        XCTAssertTrue(message.hasPrefix("Error: "), "\(what): \(message)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(message.contains(fragment), "\(what): stderr lacks '\(fragment)':\n\(result.error)",
                          file: file, line: line)
        }
    }

    /// `mirror mount` in the background; returns its result and the daemon's PID.
    private func startDaemon(over dir: String, logFile: String) throws -> (CommandResult, pid_t) {
        let result = try runSpawned([mirrorExecutable, "mount", "--dir", dir, "--log-file", logFile], timeout: 60)
        guard let pid = Self.daemonPID(in: result.output) else {
            detachAnyReplFS(at: dir)
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            throw TestFailure("mirror mount exited \(result.status) without a daemon PID; stdout: \(result.output) stderr: \(result.error) log: \(log)")
        }
        guard result.status == 0 else {
            stopDaemon(pid, mountedOver: dir)
            throw TestFailure("mirror mount exited \(result.status): \(result.error)")
        }
        return (result, pid)
    }

    /// The PID in "ReplFS daemon running (pid N, log FILE)".
    private static func daemonPID(in output: String) -> pid_t? {
        guard let start = output.range(of: "ReplFS daemon running (pid ") else { return nil }
        return pid_t(output[start.upperBound...].prefix { $0.isNumber })
    }

    /// Unmounts through the CLI, waits for the daemon, kills it by PID if it lingers, and
    /// detaches whatever ReplFS mount is left.
    private func stopDaemon(_ pid: pid_t, mountedOver dir: String) {
        if processIsAlive(pid) && isReplFSMounted(dir) {
            _ = try? runCommand([mirrorExecutable, "umount", "--dir", dir], timeout: 30)
        }
        if !waitForProcessExit(pid, timeout: 10) {
            kill(pid, SIGKILL)
            waitForProcessExit(pid, timeout: 10)
        }
        detachAnyReplFS(at: dir)
    }

    /// Detaches every ReplFS mount (live or dead) stacked at `path`.
    private func detachAnyReplFS(at path: String) {
        var attempts = 0
        while isReplFSMounted(path) && attempts < 10 {
            umount2(path, Int32(MNT_DETACH))
            attempts += 1
        }
    }

    private func replFSMountCount(at path: String) -> Int {
        mountTypes(at: path).filter { $0 == "fuse.replfs" }.count
    }

    /// The filesystem types mounted at `path`, bottom to top.
    private func mountTypes(at path: String) -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[4] == path, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { return nil }
            return String(fields[dash + 1])
        }
    }

    private func readAll(_ fd: Int32) -> String? {
        guard fd >= 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = pread(fd, &buffer, buffer.count, 0)
        return n < 0 ? nil : String(decoding: buffer[0..<n], as: UTF8.self)
    }
}
