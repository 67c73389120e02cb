import CLinux
import Foundation
import Glibc
import TestSupport

/// One filesystem operation of a differential run, on paths relative to a root directory.
enum Operation: CustomStringConvertible {
    case create(String, mode: mode_t, exclusive: Bool)
    case openTruncate(String)
    case mkdir(String, mode: mode_t)
    case mkfifo(String)
    case rmdir(String)
    case unlink(String)
    case rename(String, String, flags: UInt32)
    case link(String, String)
    case symlink(target: String, String)
    case readlink(String)
    case write(String, offset: Int, length: Int, seed: UInt64)
    case append(String, length: Int, seed: UInt64)
    case read(String, offset: Int, length: Int)
    case truncate(String, size: Int)
    case chmod(String, mode: mode_t)
    case chown(String, uid: uid_t, gid: gid_t)
    case utimens(String, atime: Int?, mtime: Int?)
    case touchNow(String)
    case setxattr(String, name: String, value: String, flags: Int32)
    case getxattr(String, name: String)
    case listxattr(String)
    case removexattr(String, name: String)
    case fallocate(String, mode: Int32, offset: Int, length: Int)
    case seek(String, offset: Int, whence: Int32)
    case copyRange(String, String, from: Int, to: Int, length: Int)
    case fsync(String, dataOnly: Bool)
    case stat(String)
    case readdir(String)

    var description: String {
        switch self {
        case .create(let p, let m, let x): return "create(\(p), \(String(m, radix: 8)), excl: \(x))"
        case .openTruncate(let p): return "open(\(p), O_TRUNC)"
        case .mkdir(let p, let m): return "mkdir(\(p), \(String(m, radix: 8)))"
        case .mkfifo(let p): return "mkfifo(\(p))"
        case .rmdir(let p): return "rmdir(\(p))"
        case .unlink(let p): return "unlink(\(p))"
        case .rename(let a, let b, let f): return "rename(\(a), \(b), flags: \(f))"
        case .link(let a, let b): return "link(\(a), \(b))"
        case .symlink(let t, let p): return "symlink(\(t), \(p))"
        case .readlink(let p): return "readlink(\(p))"
        case .write(let p, let o, let l, _): return "pwrite(\(p), off: \(o), len: \(l))"
        case .append(let p, let l, _): return "append(\(p), len: \(l))"
        case .read(let p, let o, let l): return "pread(\(p), off: \(o), len: \(l))"
        case .truncate(let p, let s): return "truncate(\(p), \(s))"
        case .chmod(let p, let m): return "chmod(\(p), \(String(m, radix: 8)))"
        case .chown(let p, let u, let g): return "chown(\(p), \(u), \(g))"
        case .utimens(let p, let a, let m): return "utimens(\(p), \(a.map(String.init) ?? "omit"), \(m.map(String.init) ?? "omit"))"
        case .touchNow(let p): return "utimens(\(p), now)"
        case .setxattr(let p, let n, let v, let f): return "setxattr(\(p), \(n), \(v), flags: \(f))"
        case .getxattr(let p, let n): return "getxattr(\(p), \(n))"
        case .listxattr(let p): return "listxattr(\(p))"
        case .removexattr(let p, let n): return "removexattr(\(p), \(n))"
        case .fallocate(let p, let m, let o, let l): return "fallocate(\(p), mode: \(m), off: \(o), len: \(l))"
        case .seek(let p, let o, let w): return "lseek(\(p), \(o), whence: \(w))"
        case .copyRange(let a, let b, let f, let t, let l): return "copy_file_range(\(a)@\(f) -> \(b)@\(t), \(l))"
        case .fsync(let p, let d): return d ? "fdatasync(\(p))" : "fsync(\(p))"
        case .stat(let p): return "lstat(\(p))"
        case .readdir(let p): return "readdir(\(p))"
        }
    }
}

/// What an operation returned: a value rendered as text, or the errno it failed with.
enum Outcome: Equatable, CustomStringConvertible {
    case ok(String)
    case failed(Int32)

    var description: String {
        switch self {
        case .ok(let value): return "ok(\(value))"
        case .failed(let code): return "errno \(code) (\(String(cString: strerror(code))))"
        }
    }
}

/// Applies operations under a root directory with plain system calls.
struct OperationRunner {
    let root: String

    func path(_ relative: String) -> String { root + "/" + relative }

    func apply(_ operation: Operation) -> Outcome {
        errno = 0
        switch operation {
        case .create(let p, let mode, let exclusive):
            return withOpen(p, O_CREAT | O_WRONLY | (exclusive ? O_EXCL : 0), mode) { _ in .ok("") }
        case .openTruncate(let p):
            return withOpen(p, O_WRONLY | O_TRUNC) { _ in .ok("") }
        case .mkdir(let p, let mode):
            return check(Glibc.mkdir(path(p), mode))
        case .mkfifo(let p):
            return check(Glibc.mkfifo(path(p), 0o640))
        case .rmdir(let p):
            return check(Glibc.rmdir(path(p)))
        case .unlink(let p):
            return check(Glibc.unlink(path(p)))
        case .rename(let a, let b, let flags):
            return check(clinux_renameat2(AT_FDCWD, path(a), AT_FDCWD, path(b), flags))
        case .link(let a, let b):
            return check(Glibc.link(path(a), path(b)))
        case .symlink(let target, let p):
            return check(Glibc.symlink(target, path(p)))
        case .readlink(let p):
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = Glibc.readlink(path(p), &buffer, buffer.count)
            if n < 0 { return .failed(errno) }
            return .ok(String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        case .write(let p, let offset, let length, let seed):
            return withOpen(p, O_WRONLY) { fd in
                let bytes = pattern(length, seed: seed)
                let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, length, off_t(offset)) }
                return n < 0 ? .failed(errno) : .ok("\(n)")
            }
        case .append(let p, let length, let seed):
            return withOpen(p, O_WRONLY | O_APPEND) { fd in
                let bytes = pattern(length, seed: seed)
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, length) }
                return n < 0 ? .failed(errno) : .ok("\(n)")
            }
        case .read(let p, let offset, let length):
            return withOpen(p, O_RDONLY) { fd in
                var buffer = [UInt8](repeating: 0, count: length)
                let n = pread(fd, &buffer, length, off_t(offset))
                return n < 0 ? .failed(errno) : .ok("\(n):\(checksum(buffer[0..<n]))")
            }
        case .truncate(let p, let size):
            return check(Glibc.truncate(path(p), off_t(size)))
        case .chmod(let p, let mode):
            return check(Glibc.chmod(path(p), mode))
        case .chown(let p, let uid, let gid):
            return check(Glibc.lchown(path(p), uid, gid))
        case .utimens(let p, let atime, let mtime):
            var times = [time(atime), time(mtime)]
            let rc = utimensat(AT_FDCWD, path(p), &times, AT_SYMLINK_NOFOLLOW)
            if rc != 0 { return .failed(errno) }
            var st = Glibc.stat.init()
            if lstat(path(p), &st) != 0 { return .failed(errno) }
            let a = atime.map { _ in "atime \(st.st_atim.tv_sec).\(st.st_atim.tv_nsec)" } ?? ""
            let m = mtime.map { _ in "mtime \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)" } ?? ""
            return .ok("\(a) \(m)")
        case .touchNow(let p):
            let rc = utimensat(AT_FDCWD, path(p), nil, 0)
            if rc != 0 { return .failed(errno) }
            var st = Glibc.stat()
            _ = fstatat(AT_FDCWD, path(p), &st, 0)
            let age = abs(Int(Date().timeIntervalSince1970) - st.st_mtim.tv_sec)
            return .ok(age < 10 ? "recent" : "mtime \(age) s away from now")
        case .setxattr(let p, let name, let value, let flags):
            return check(CLinux.lsetxattr(path(p), name, value, value.utf8.count, flags))
        case .getxattr(let p, let name):
            var buffer = [CChar](repeating: 0, count: 256)
            let n = CLinux.lgetxattr(path(p), name, &buffer, buffer.count)
            if n < 0 { return .failed(errno) }
            return .ok(String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        case .listxattr(let p):
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = CLinux.llistxattr(path(p), &buffer, buffer.count)
            if n < 0 { return .failed(errno) }
            let names = buffer[0..<n].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            return .ok(names.filter { $0.hasPrefix("user.") }.sorted().joined(separator: ","))
        case .removexattr(let p, let name):
            return check(CLinux.lremovexattr(path(p), name))
        case .fallocate(let p, let mode, let offset, let length):
            return withOpen(p, O_WRONLY) { fd in
                clinux_fallocate(fd, mode, Int64(offset), Int64(length)) == 0 ? .ok("") : .failed(errno)
            }
        case .seek(let p, let offset, let whence):
            return withOpen(p, O_RDONLY) { fd in
                // SEEK_DATA/SEEK_HOLE mean nothing on directories (ext4 answers arbitrarily).
                var st = Glibc.stat.init()
                if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG { return .ok("not a regular file") }
                let position = lseek(fd, off_t(offset), whence)
                return position < 0 ? .failed(errno) : .ok("\(position)")
            }
        case .copyRange(let a, let b, let from, let to, let length):
            return withOpen(a, O_RDONLY) { source in
                withOpen(b, O_WRONLY) { destination in
                    var inOffset = Int64(from), outOffset = Int64(to)
                    let n = clinux_copy_file_range(source, &inOffset, destination, &outOffset, length, 0)
                    return n < 0 ? .failed(errno) : .ok("\(n)")
                }
            }
        case .fsync(let p, let dataOnly):
            return withOpen(p, O_RDONLY) { fd in
                check(dataOnly ? fdatasync(fd) : Glibc.fsync(fd))
            }
        case .stat(let p):
            return statDescription(p)
        case .readdir(let p):
            guard let dir = opendir(path(p)) else { return .failed(errno) }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = Glibc.readdir(dir) {
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                names.append("\(name):\(entry.pointee.d_type)")
            }
            return .ok(names.sorted().joined(separator: ","))
        }
    }

    private func withOpen(_ p: String, _ flags: Int32, _ mode: mode_t = 0o644, _ body: (Int32) -> Outcome) -> Outcome {
        let fd = Glibc.open(path(p), flags | O_CLOEXEC | O_NONBLOCK, mode)
        if fd < 0 { return .failed(errno) }
        defer { close(fd) }
        return body(fd)
    }

    private func check(_ rc: Int32) -> Outcome {
        rc == 0 ? .ok("") : .failed(errno)
    }

    private func time(_ seconds: Int?) -> timespec {
        guard let seconds else { return timespec(tv_sec: 0, tv_nsec: clinux_UTIME_OMIT) }
        return timespec(tv_sec: seconds, tv_nsec: 123_000_000)
    }

    private func statDescription(_ p: String) -> Outcome {
        var st = Glibc.stat()
        if lstat(path(p), &st) != 0 { return .failed(errno) }
        var text = "mode \(String(st.st_mode, radix: 8)) nlink \(st.st_nlink) uid \(st.st_uid) gid \(st.st_gid)"
        if (st.st_mode & S_IFMT) != S_IFDIR { text += " size \(st.st_size)" }
        return .ok(text)
    }
}
