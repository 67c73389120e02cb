import Foundation
import Glibc

/// A scratch directory on a disk filesystem (/var/tmp), removed with everything in it at the end.
final class ScratchDirectory {
    let path: String

    init(_ label: String) throws {
        let base = "/var/tmp/replapply-tests"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        var template = Array("\(base)/\(label)-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw TestFailure("mkdtemp: \(String(cString: strerror(errno)))") }
        path = String(cString: template)
        chmod(path, 0o755)
    }

    /// A new subdirectory, mode 0755.
    func sub(_ name: String) throws -> String {
        let p = path + "/" + name
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        chmod(p, 0o755)
        return p
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A failure of the test's own machinery, with what went wrong.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
