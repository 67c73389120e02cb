import Foundation
import Glibc
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

/// The built `mirror` executable, next to the test bundle.
let mirrorExecutable: String = {
    let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for candidate in [bundleDirectory, bundleDirectory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("mirror").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    let selfExe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    let besideExe = URL(fileURLWithPath: selfExe).deletingLastPathComponent().appendingPathComponent("mirror").path
    if FileManager.default.isExecutableFile(atPath: besideExe) { return besideExe }
    fatalError("the mirror executable was not found beside the tests (\(bundleDirectory.path)); run 'swift build' first")
}()

/// A scratch directory under /tmp (not /dev/shm: ReplFS must be tested over a real disk filesystem),
/// removed with everything in it when the test ends.
final class ScratchDirectory {
    let path: String

    init(_ label: String) throws {
        let base = "/var/tmp/replfs-tests"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        chmod(base, 0o755)
        var template = Array("\(base)/\(label)-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
        path = String(cString: template)
        chmod(path, 0o755)
    }

    func sub(_ name: String) throws -> String {
        let p = path + "/" + name
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Result of a command run by a test.
struct CommandResult {
    let status: Int32
    let output: String
    let error: String
}

/// Runs a program to completion, capturing its output.
@discardableResult
func runCommand(_ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
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
    while process.isRunning && Date() < deadline { usleep(20_000) }
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

/// Runs a program and fails unless it exits 0.
@discardableResult
func mustRun(_ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
             timeout: TimeInterval = 600) throws -> String {
    let result = try runCommand(arguments, environment: environment, input: input, timeout: timeout)
    guard result.status == 0 else {
        throw TestFailure("\(arguments.joined(separator: " ")) exited \(result.status): \(result.error)\(result.output.suffix(2000))")
    }
    return result.output
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
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
