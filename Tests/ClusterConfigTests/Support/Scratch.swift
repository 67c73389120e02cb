import Foundation
import Glibc
import TestSupport

extension ScratchDirectory {
    /// A scratch directory for cluster-file tests.
    convenience init() throws { try self.init("config") }

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
