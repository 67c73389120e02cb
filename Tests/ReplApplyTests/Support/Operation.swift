import Glibc

/// One change made on the primary, on paths relative to the module's root.
enum Operation: CustomStringConvertible {
    case create(String, mode: mode_t, uid: uid_t, gid: gid_t, exclusive: Bool)
    case mkdir(String, mode: mode_t, uid: uid_t, gid: gid_t)
    case mknod(String, mode: mode_t, rdev: dev_t)
    case symlink(target: String, String, uid: uid_t, gid: gid_t)
    case link(String, String)
    case unlink(String)
    case rmdir(String)
    case rename(String, String, flags: UInt32)
    case write(String, offset: Int, length: Int, seed: UInt64)
    /// A write through a descriptor the application still holds: to the `index`-th file the
    /// primary knows (modulo their number), whatever its names are now, or none.
    case writeOpenFile(index: Int, offset: Int, length: Int, seed: UInt64)
    case truncate(String, size: Int)
    case chmod(String, mode: mode_t)
    case chown(String, uid: uid_t, gid: gid_t)
    case utimens(String, atime: Int?, mtime: Int?)
    case setxattr(String, name: String, value: String, flags: Int32)
    case removexattr(String, name: String)
    case fallocate(String, mode: Int32, offset: Int, length: Int)
    case fsync(String, dataOnly: Bool)
    /// The application closes its last reference to the `index`-th known node.
    case forget(index: Int)

    var description: String {
        switch self {
        case .create(let p, let m, let u, let g, let x): return "create(\(p), \(String(m, radix: 8)), \(u):\(g), excl: \(x))"
        case .mkdir(let p, let m, let u, let g): return "mkdir(\(p), \(String(m, radix: 8)), \(u):\(g))"
        case .mknod(let p, let m, let r): return "mknod(\(p), \(String(m, radix: 8)), rdev \(r))"
        case .symlink(let t, let p, let u, let g): return "symlink(\(t), \(p), \(u):\(g))"
        case .link(let a, let b): return "link(\(a), \(b))"
        case .unlink(let p): return "unlink(\(p))"
        case .rmdir(let p): return "rmdir(\(p))"
        case .rename(let a, let b, let f): return "rename(\(a), \(b), flags: \(f))"
        case .write(let p, let o, let l, _): return "pwrite(\(p), off: \(o), len: \(l))"
        case .writeOpenFile(let i, let o, let l, _): return "pwrite(open file #\(i), off: \(o), len: \(l))"
        case .truncate(let p, let s): return "truncate(\(p), \(s))"
        case .chmod(let p, let m): return "chmod(\(p), \(String(m, radix: 8)))"
        case .chown(let p, let u, let g): return "lchown(\(p), \(u), \(g))"
        case .utimens(let p, let a, let m): return "utimens(\(p), \(a.map(String.init) ?? "omit"), \(m.map(String.init) ?? "omit"))"
        case .setxattr(let p, let n, let v, let f): return "setxattr(\(p), \(n), \(v), flags: \(f))"
        case .removexattr(let p, let n): return "removexattr(\(p), \(n))"
        case .fallocate(let p, let m, let o, let l): return "fallocate(\(p), mode: \(m), off: \(o), len: \(l))"
        case .fsync(let p, let d): return d ? "fdatasync(\(p))" : "fsync(\(p))"
        case .forget(let i): return "forget(known node #\(i))"
        }
    }
}
