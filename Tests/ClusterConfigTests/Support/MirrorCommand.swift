import Foundation
import TestSupport

/// What a finished `mirror` run printed and returned.
struct CommandResult {
    let status: Int32
    let standardOutput: String
    let standardError: String

    var errorLines: [String] { standardError.split(separator: "\n").map(String.init) }
}

/// Runs `mirror` with `arguments` and waits for it.
func runMirror(_ arguments: [String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: mirrorExecutable)
    process.arguments = arguments
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus,
        standardOutput: String(decoding: outputData, as: UTF8.self),
        standardError: String(decoding: errorData, as: UTF8.self)
    )
}
