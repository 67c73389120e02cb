import Foundation
import Glibc

/// A scratch directory on a disk filesystem (/var/tmp, not tmpfs), removed with everything in it
/// when the test ends. Mode 0755, so that tests running commands as another user can enter it.
public final class ScratchDirectory {
    public let path: String

    public init(_ label: String) throws {
        let base = "/var/tmp/mirror-tests"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        chmod(base, 0o755)
        var template = Array("\(base)/\(label)-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw TestFailure("mkdtemp: \(String(cString: strerror(errno)))") }
        path = String(cString: template)
        chmod(path, 0o755)
    }

    /// A new subdirectory, mode 0755.
    public func sub(_ name: String) throws -> String {
        let p = path + "/" + name
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        chmod(p, 0o755)
        return p
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A failure of the test's own machinery, with what went wrong.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// FNV-1a over bytes, for compact comparisons of contents.
public func checksum<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var hash: UInt64 = 0xcbf29ce484222325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x100000001b3
    }
    return String(hash, radix: 16)
}
