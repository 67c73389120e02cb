import CLinux
import Foundation
import Glibc

/// Everything about a directory tree that must be the same on both copies: names, types, modes,
/// owners, sizes, contents, holes, device numbers, symlink targets, xattrs, link counts and
/// hard-link groups. Times only where a test asks for them; xattrs of the `user.` namespace
/// unless a test names others (e.g. `trusted.`, `security.`, `system.posix_acl_`).
public struct TreeSnapshot: Equatable {
    public var entries: [String: String] = [:]
    /// Sets of paths that are the same inode (hard links), sorted.
    public var linkGroups: [[String]] = []

    /// - Parameter xattrPrefixes: xattrs whose names start with one of these are compared.
    public init(of root: String, includingTimes: Bool = false, xattrPrefixes: [String] = ["user."]) throws {
        var byInode: [UInt64: [String]] = [:]
        try walk(root: root, relative: "", includingTimes: includingTimes, xattrPrefixes: xattrPrefixes, byInode: &byInode)
        linkGroups = byInode.values.filter { $0.count > 1 }.map { $0.sorted() }.sorted { $0[0] < $1[0] }
    }

    /// Differences, one line each, for a readable failure.
    public func differences(from other: TreeSnapshot) -> [String] {
        var lines: [String] = []
        for key in Set(entries.keys).union(other.entries.keys).sorted() where entries[key] != other.entries[key] {
            lines.append("\(key): \(entries[key] ?? "absent")  vs  \(other.entries[key] ?? "absent")")
        }
        if linkGroups != other.linkGroups { lines.append("hard links: \(linkGroups) vs \(other.linkGroups)") }
        return lines
    }

    private mutating func walk(root: String, relative: String, includingTimes: Bool, xattrPrefixes: [String],
                               byInode: inout [UInt64: [String]]) throws {
        let directory = relative.isEmpty ? root : root + "/" + relative
        for name in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            let rel = relative.isEmpty ? name : relative + "/" + name
            let full = root + "/" + rel
            var st = stat()
            guard lstat(full, &st) == 0 else { throw TestFailure("lstat \(full): \(String(cString: strerror(errno)))") }
            var text = "mode \(String(st.st_mode, radix: 8)) uid \(st.st_uid) gid \(st.st_gid) nlink \(st.st_nlink)"
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                text += " size \(st.st_size) data \(try contentChecksum(full)) layout \(layout(full, size: Int(st.st_size)))"
                byInode[UInt64(st.st_ino), default: []].append(rel)
            case S_IFLNK:
                text += " -> \(symlinkTarget(full))"
            case S_IFDIR:
                try walk(root: root, relative: rel, includingTimes: includingTimes, xattrPrefixes: xattrPrefixes, byInode: &byInode)
            default:
                text += " rdev \(st.st_rdev)"
            }
            if includingTimes {
                text += " atime \(st.st_atim.tv_sec).\(st.st_atim.tv_nsec) mtime \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            }
            text += " xattrs \(xattrs(full, prefixes: xattrPrefixes))"
            entries[rel] = text
        }
    }

    private func contentChecksum(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw TestFailure("cannot read \(path)") }
        return checksum(data)
    }

    private func symlinkTarget(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buffer, 4096)
        return n < 0 ? "unreadable" : String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Data and hole segments, from SEEK_DATA/SEEK_HOLE.
    private func layout(_ path: String, size: Int) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "unreadable" }
        defer { close(fd) }
        var segments: [String] = []
        var position = 0
        while position < size {
            let data = lseek(fd, off_t(position), clinux_SEEK_DATA)
            if data < 0 { break }
            let hole = lseek(fd, off_t(data), clinux_SEEK_HOLE)
            segments.append("\(data)-\(hole)")
            position = Int(hole)
        }
        return segments.joined(separator: ",")
    }

    private func xattrs(_ path: String, prefixes: [String]) -> String {
        var names = [CChar](repeating: 0, count: 4096)
        let n = llistxattr(path, &names, names.count)
        guard n > 0 else { return "" }
        return names[0..<n].split(separator: 0)
            .map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            .filter { name in prefixes.contains { name.hasPrefix($0) } }
            .sorted()
            .map { name -> String in
                var value = [CChar](repeating: 0, count: 4096)
                let length = lgetxattr(path, name, &value, value.count)
                guard length >= 0 else { return "\(name)=?" }
                let bytes = value[0..<length].map { UInt8(bitPattern: $0) }
                let printable = bytes.allSatisfy { (0x20...0x7e).contains($0) }
                return "\(name)=\(printable ? String(decoding: bytes, as: UTF8.self) : "0x" + bytes.map { String(format: "%02x", $0) }.joined())"
            }
            .joined(separator: ";")
    }
}
