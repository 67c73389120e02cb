import Foundation
import Glibc

/// Fails the test loudly (never skips) without root: the tests that use it mount filesystems,
/// create network namespaces, change addresses or send raw frames. The error thrown fails the test.
public func requireRoot(_ why: String = "these tests need root") throws {
    guard geteuid() == 0 else { throw TestFailure("not root: \(why)") }
}

/// Fails the test loudly (never skips) without /dev/fuse.
public func requireFUSE() throws {
    guard access("/dev/fuse", F_OK) == 0 else {
        throw TestFailure("/dev/fuse is missing: these tests need FUSE (apt-get install fuse3; modprobe fuse)")
    }
}

/// What a finished command printed and returned.
public struct CommandResult {
    public let status: Int32
    public let output: String
    public let error: String

    public init(status: Int32, output: String, error: String) {
        self.status = status
        self.output = output
        self.error = error
    }
}

/// Runs a program (found on PATH unless absolute) to completion, capturing its output, with
/// `environment` added to the test's and `input` on its standard input (else /dev/null); killed
/// by PID after `timeout` seconds.
@discardableResult
public func runCommand(_ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
                       timeout: TimeInterval = 600) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0].hasPrefix("/") ? arguments[0] : "/usr/bin/env")
    process.arguments = arguments[0].hasPrefix("/") ? Array(arguments.dropFirst()) : arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let inPipe = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    try process.run()
    if let input {
        inPipe.fileHandleForWriting.write(Data(input.utf8))
        try inPipe.fileHandleForWriting.close()
    }
    let outData = DataBox(), errData = DataBox()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { outData.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(5_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        group.wait()
        throw TestFailure("\(arguments.joined(separator: " ")) timed out after \(timeout) s")
    }
    process.waitUntilExit()
    group.wait()
    return CommandResult(status: process.terminationStatus,
                         output: String(decoding: outData.data, as: UTF8.self),
                         error: String(decoding: errData.data, as: UTF8.self))
}

/// Bytes filled by one reader thread and read after it finished (the DispatchGroup orders them).
private final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// Runs a program and fails unless it exits 0; its standard output.
@discardableResult
public func mustRun(_ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
                    timeout: TimeInterval = 600) throws -> String {
    let result = try runCommand(arguments, environment: environment, input: input, timeout: timeout)
    guard result.status == 0 else {
        throw TestFailure("\(arguments.joined(separator: " ")) exited \(result.status): \(result.error)\(result.output.suffix(2000))")
    }
    return result.output
}

/// Seconds on the monotonic clock (CLOCK_MONOTONIC: the same clock in every process).
public func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Whether process `pid` exists and has not exited; a zombie (exited, not yet reaped) counts as
/// exited. Works for processes that are not children of the test (daemons, postmasters).
public func processIsAlive(_ pid: pid_t) -> Bool {
    guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let nameEnd = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: nameEnd)...].drop { $0 == " " }.first
    return state != "Z" && state != "X"
}

/// Waits until `process` has exited: Foundation saw it end, or it is a zombie Foundation has not
/// reaped (it can miss the end of a child killed while many others come and go, and
/// `waitUntilExit()` would then wait forever). Returns false if it still runs after `timeout`.
@discardableResult
public func waitForExit(of process: Process, timeout: TimeInterval = 120) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && processIsAlive(process.processIdentifier) {
        guard Date() < deadline else { return false }
        usleep(10_000)
    }
    return true
}

/// The processes (zombies left out) that are `leader` itself, belong to its session or are its
/// children, run by `owner` if given; found in /proc, also once the leader is dead (its session
/// stays). For an application started by a script: `setsid` daemon, a postmaster and its backends.
public func processFamily(of leader: pid_t, owner: uid_t? = nil) -> [pid_t] {
    var found: [pid_t] = []
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        var info = stat()
        guard let pid = pid_t(name), stat("/proc/\(pid)", &info) == 0, owner.map({ info.st_uid == $0 }) ?? true,
              let fields = statFields(pid), fields.state != "Z" && fields.state != "X" else { continue }
        if pid == leader || fields.session == leader || fields.parent == leader { found.append(pid) }
    }
    return found.sorted()
}

/// SIGKILL, by PID, to `leader` and its family (``processFamily(of:owner:)``) until none is left
/// (10 s at most), as a crash would: the leader is stopped first so that it forks nothing meanwhile.
public func killFamily(of leader: pid_t, owner: uid_t? = nil) {
    if processIsAlive(leader) { kill(leader, SIGSTOP) }
    let deadline = Date().addingTimeInterval(10)
    var processes = processFamily(of: leader, owner: owner)
    while !processes.isEmpty && Date() < deadline {
        for pid in processes { kill(pid, SIGKILL) }
        usleep(10_000)
        processes = processFamily(of: leader, owner: owner)
    }
}

/// State, parent and session of a process, from /proc/PID/stat.
private func statFields(_ pid: pid_t) -> (state: Character, parent: pid_t, session: pid_t)? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let nameEnd = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
    // state ppid pgrp session ...
    guard fields.count > 3, let state = fields[0].first, let parent = pid_t(fields[1]), let session = pid_t(fields[3]) else {
        return nil
    }
    return (state, parent, session)
}

/// Runs a program to completion like `runCommand`, but through posix_spawn with nothing but
/// descriptors 0 (/dev/null), 1 and 2 (files read back afterwards), plus `passing` (child
/// descriptor → parent descriptor, child numbers above 2). For commands that leave a daemon
/// behind (`mirror mount`, `pg_ctl start`): Foundation.Process notices that its child exited only
/// once every holder of a socket it hands the child has closed it, so a daemon inheriting that
/// socket makes `runCommand` wait as long as the daemon lives. The status of a program killed by a
/// signal is 128 + the signal.
public func runSpawned(_ arguments: [String], passing: [Int32: Int32] = [:], timeout: TimeInterval = 600) throws -> CommandResult {
    func captureFile() throws -> Int32 {
        var template = Array("/tmp/replfs-test-output-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw TestFailure("mkstemp: \(String(cString: strerror(errno)))") }
        unlink(template)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }
    func readBack(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let n = pread(fd, &chunk, chunk.count, offset)
            if n <= 0 { break }
            bytes += chunk[0..<n]
            offset += off_t(n)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
    let out = try captureFile()
    defer { close(out) }
    let err = try captureFile()
    defer { close(err) }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, out, 1)
    posix_spawn_file_actions_adddup2(&actions, err, 2)
    for (child, parent) in passing.sorted(by: { $0.key < $1.key }) {
        precondition(child > 2, "descriptors 0-2 are the command's standard streams")
        posix_spawn_file_actions_adddup2(&actions, parent, child)
    }
    let highest = passing.keys.max() ?? 2
    if highest >= 3 {
        for fd in 3...highest where passing[fd] == nil { posix_spawn_file_actions_addclose(&actions, fd) }
    }
    // glibc >= 2.34 has posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module hides.
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, highest + 1)
    } else {
        let openFDs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for fd in openFDs where fd > highest { posix_spawn_file_actions_addclose(&actions, fd) }
    }

    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let rc = arguments[0].hasPrefix("/")
        ? posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        : posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
    guard rc == 0 else { throw TestFailure("cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }

    var status: Int32 = 0
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        let waited = waitpid(pid, &status, WNOHANG)
        if waited == pid { break }
        if waited < 0 && errno != EINTR { throw TestFailure("waitpid \(pid): \(String(cString: strerror(errno)))") }
        if Date() >= deadline {
            kill(pid, SIGKILL)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            throw TestFailure("\(arguments.joined(separator: " ")) timed out after \(timeout) s; stderr: \(readBack(err))")
        }
        usleep(10_000)
    }
    let signal = status & 0x7f
    return CommandResult(status: signal == 0 ? (status >> 8) & 0xff : 128 + signal,
                         output: readBack(out), error: readBack(err))
}
