import Foundation
import TestSupport
import Glibc
import XCTest

/// Fails the test loudly (never skips) without root: these tests create network namespaces,
/// veth pairs and a bridge, change addresses and send raw ARP frames.
func requireRoot(file: StaticString = #filePath, line: UInt = #line) throws {
    guard geteuid() == 0 else {
        XCTFail("virtual IP tests create network namespaces and raw sockets and must run as root", file: file, line: line)
        throw XCTSkip("unreachable")
    }
}

/// A failure of the test's own plumbing, with its explanation.
struct LabFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What a finished command printed and returned.
struct CommandResult {
    let status: Int32
    let output: String
    let error: String
}

/// Runs a program (found on PATH unless absolute) to completion, killing it by PID after `timeout` seconds.
@discardableResult
func runCommand(_ arguments: [String], timeout: TimeInterval = 30) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0].hasPrefix("/") ? arguments[0] : "/usr/bin/env")
    process.arguments = arguments[0].hasPrefix("/") ? Array(arguments.dropFirst()) : arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let output = OutputBox(), error = OutputBox()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { output.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { error.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(5_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        group.wait()
        throw LabFailure("\(arguments.joined(separator: " ")) timed out after \(timeout) s")
    }
    process.waitUntilExit()
    group.wait()
    return CommandResult(status: process.terminationStatus,
                         output: String(decoding: output.data, as: UTF8.self),
                         error: String(decoding: error.data, as: UTF8.self))
}

/// Runs a program and fails unless it exits 0; its standard output.
@discardableResult
func mustRun(_ arguments: [String], timeout: TimeInterval = 30) throws -> String {
    let result = try runCommand(arguments, timeout: timeout)
    guard result.status == 0 else {
        throw LabFailure("\(arguments.joined(separator: " ")) exited \(result.status): \(result.error)\(result.output)")
    }
    return result.output
}

/// Bytes filled by one reader thread and read after it finished (the DispatchGroup orders them).
private final class OutputBox: @unchecked Sendable {
    var data = Data()
}

/// Seconds on the monotonic clock.
func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}
