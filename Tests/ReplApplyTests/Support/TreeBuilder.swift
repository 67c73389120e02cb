import CLinux
import Foundation
import Glibc
import TestSupport

/// Builds test trees with direct system calls on paths relative to `root`; every failure throws
/// with the call and the path.
struct TreeBuilder {
    let root: String

    func path(_ relative: String) -> String { relative.isEmpty ? root : root + "/" + relative }

    func dir(_ relative: String, mode: mode_t = 0o755, uid: uid_t = 0, gid: gid_t = 0) throws {
        try check("mkdir", relative, mkdir(path(relative), 0o700))
        try owner(relative, uid: uid, gid: gid)
        try chmod(relative, mode)
    }

    /// A file of `size` bytes, written (seeded pattern) only at `writes` (offset, length): the rest is holes.
    func file(_ relative: String, size: Int, writes: [(offset: Int, length: Int)] = [], seed: UInt64 = 1,
              mode: mode_t = 0o644, uid: uid_t = 0, gid: gid_t = 0) throws {
        let fd = open(path(relative), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        try check("create", relative, fd)
        defer { close(fd) }
        for (index, write) in writes.enumerated() {
            let bytes = pattern(write.length, seed: seed &+ UInt64(index))
            try check("pwrite", relative, bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(write.offset)) })
        }
        try check("ftruncate", relative, ftruncate(fd, off_t(size)))
        try owner(relative, uid: uid, gid: gid)
        try chmod(relative, mode)
    }

    /// A file entirely written with the seeded pattern.
    func dense(_ relative: String, size: Int, seed: UInt64 = 1, mode: mode_t = 0o644, uid: uid_t = 0, gid: gid_t = 0) throws {
        try file(relative, size: size, writes: size > 0 ? [(0, size)] : [], seed: seed, mode: mode, uid: uid, gid: gid)
    }

    func symlink(_ relative: String, to target: String, uid: uid_t = 0, gid: gid_t = 0) throws {
        try check("symlink", relative, Glibc.symlink(target, path(relative)))
        try owner(relative, uid: uid, gid: gid)
    }

    /// A FIFO, socket or device node: `mode` includes the type.
    func node(_ relative: String, mode: mode_t, rdev: dev_t = 0) throws {
        try check("mknod", relative, mknod(path(relative), mode, rdev))
        try chmod(relative, mode & 0o7777)
    }

    func link(_ existing: String, _ relative: String) throws {
        try check("link", relative, Glibc.link(path(existing), path(relative)))
    }

    func owner(_ relative: String, uid: uid_t, gid: gid_t) throws {
        try check("lchown", relative, lchown(path(relative), uid, gid))
    }

    func chmod(_ relative: String, _ mode: mode_t) throws {
        try check("chmod", relative, Glibc.chmod(path(relative), mode))
    }

    func xattr(_ relative: String, _ name: String, _ value: [UInt8]) throws {
        try check("lsetxattr \(name)", relative, value.withUnsafeBytes { lsetxattr(path(relative), name, $0.baseAddress, $0.count, 0) })
    }

    func xattr(_ relative: String, _ name: String, _ value: String) throws {
        try xattr(relative, name, Array(value.utf8))
    }

    /// Sets the times of every entry (and of the root) from a hash of its path and `seed`: a
    /// modification time in the past and an access time in the future, so that reading the tree
    /// never changes an access time (relatime updates only an access time not after the
    /// modification or change time, or a day old).
    func stampTimes(seed: UInt64 = 0) throws {
        var relatives = [""]
        var index = 0
        while index < relatives.count {
            let relative = relatives[index]
            index += 1
            var st = stat()
            try check("lstat", relative, lstat(path(relative), &st))
            if st.st_mode & S_IFMT == S_IFDIR {
                for name in try FileManager.default.contentsOfDirectory(atPath: path(relative)).sorted() {
                    relatives.append(relative.isEmpty ? name : relative + "/" + name)
                }
            }
        }
        for relative in relatives.reversed() {
            let hash = UInt64(checksum(Array((relative + "#\(seed)").utf8)), radix: 16)!
            var times = [timespec(tv_sec: 4_000_000_000 + Int(hash % 100_000), tv_nsec: Int(hash % 1_000_000_000)),
                         timespec(tv_sec: 1_600_000_000 + Int(hash % 10_000_000), tv_nsec: Int((hash >> 20) % 1_000_000_000))]
            try check("utimensat", relative, utimensat(AT_FDCWD, path(relative), &times, AT_SYMLINK_NOFOLLOW))
        }
    }

    private func check<T: BinaryInteger>(_ call: String, _ relative: String, _ result: T) throws {
        if result < 0 { throw TestFailure("\(call) \(path(relative)): \(String(cString: strerror(errno)))") }
    }
}

/// A POSIX access ACL as the kernel stores it in `system.posix_acl_access`: the owner `rw-`,
/// user `uid` `r--`, group, mask and others `r--`.
func accessACL(grantingReadTo uid: UInt32) -> [UInt8] {
    func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
    let undefined = UInt32.max
    let entries: [(tag: UInt16, perm: UInt16, id: UInt32)] = [(0x01, 6, undefined), (0x02, 4, uid), (0x04, 4, undefined),
                                                              (0x10, 4, undefined), (0x20, 4, undefined)]
    return le32(2) + entries.flatMap { le16($0.tag) + le16($0.perm) + le32($0.id) }
}

/// glibc's `makedev` (a macro Swift does not import).
func deviceNumber(_ major: UInt64, _ minor: UInt64) -> dev_t {
    dev_t((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32))
}
