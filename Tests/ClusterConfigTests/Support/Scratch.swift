import Foundation
import Glibc

/// A scratch directory removed with everything in it when the test ends.
final class ScratchDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/cluster-config-tests-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
        path = String(cString: template)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes `content` to `name` inside the directory with `mode`, and returns its path.
    @discardableResult
    func write(_ name: String, _ content: String, mode: mode_t = 0o600) throws -> String {
        let file = "\(path)/\(name)"
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try content.write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, mode)
        return file
    }

    /// Creates the directory `name` (and its parents) inside the scratch directory, and returns its path.
    @discardableResult
    func makeDirectory(_ name: String) throws -> String {
        let directory = "\(path)/\(name)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }
}
