import CLinux
import Glibc
import ReplFS

/// Extended attributes by path (`/proc/self/fd/N` of an `O_PATH` descriptor, see ``withProcPath(_:_:)``)
/// or by an open descriptor; names and values as raw bytes.
enum Xattrs {
    /// File capabilities: the kernel drops them on every write and truncation of the file.
    static let capability = Array("security.capability".utf8)

    /// The names a resync manages on this copy: it sets the listed ones and removes the others.
    /// `user.`, `trusted.` and `security.` (all three are what `listxattr` shows a root process,
    /// and root can set them back), and the POSIX ACLs (`system.posix_acl_access`,
    /// `system.posix_acl_default`), which are part of who may access the file. Other `system.`
    /// names are filesystem-specific or synthesized by the kernel: left alone.
    static func isManaged(_ name: [UInt8]) -> Bool {
        managedPrefixes.contains { name.starts(with: $0) } || managedNames.contains(name)
    }

    private static let managedPrefixes = ["user.", "trusted.", "security."].map { Array($0.utf8) }
    private static let managedNames: Set<[UInt8]> = Set(["system.posix_acl_access", "system.posix_acl_default"].map { Array($0.utf8) })

    static func names(path: UnsafePointer<CChar>) throws -> [[UInt8]] {
        let list = try readSized { buffer, size in
            listxattr(path, buffer?.assumingMemoryBound(to: CChar.self), size)
        } ?? []
        return list.split(separator: 0).map(Array.init)
    }

    /// The value of `name`; nil if the file has no such attribute.
    static func value(path: UnsafePointer<CChar>, name: [UInt8]) throws -> [UInt8]? {
        try withName(name) { name in try readSized { getxattr(path, name, $0, $1) } }
    }

    static func set(path: UnsafePointer<CChar>, name: [UInt8], value: [UInt8]) throws {
        try withName(name) { name in
            try value.withUnsafeBytes { bytes in try sys { setxattr(path, name, bytes.baseAddress, bytes.count, 0) } }
        }
    }

    /// Removes `name`; an attribute already gone is not an error.
    static func remove(path: UnsafePointer<CChar>, name: [UInt8]) throws {
        try withName(name) { name in
            if removexattr(path, name) != 0, errno != ENODATA { throw FSError.last }
        }
    }

    static func value(fd: Int32, name: [UInt8]) throws -> [UInt8]? {
        try withName(name) { name in try readSized { fgetxattr(fd, name, $0, $1) } }
    }

    static func set(fd: Int32, name: [UInt8], value: [UInt8]) throws {
        try withName(name) { name in
            try value.withUnsafeBytes { bytes in try sys { fsetxattr(fd, name, bytes.baseAddress, bytes.count, 0) } }
        }
    }

    /// Asks `call` for the size, then for the bytes, again if they grew meanwhile (`ERANGE`);
    /// nil for `ENODATA`.
    private static func readSized(_ call: (UnsafeMutableRawPointer?, Int) -> Int) throws -> [UInt8]? {
        while true {
            let size = call(nil, 0)
            if size < 0 {
                if errno == EINTR { continue }
                if errno == ENODATA { return nil }
                throw FSError.last
            }
            if size == 0 { return [] }
            var buffer = [UInt8](repeating: 0, count: size)
            let read = buffer.withUnsafeMutableBytes { call($0.baseAddress, size) }
            if read >= 0 { return Array(buffer.prefix(read)) }
            if errno == ERANGE || errno == EINTR { continue }
            if errno == ENODATA { return nil }
            throw FSError.last
        }
    }

    @discardableResult
    private static func withName<T>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try (name + [0]).withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }
}
