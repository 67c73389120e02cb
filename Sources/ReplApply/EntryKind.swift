import Glibc
import ReplFS
import ReplProtocol

/// The type a manifest lists for one entry, with what makes two entries of that type the same
/// (a symbolic link's target, a device node's number).
enum EntryKind: Equatable {
    case regular
    case directory
    case symlink(SymlinkTarget)
    case fifo
    case socket
    /// A character (`S_IFCHR`) or block (`S_IFBLK`) device node.
    case device(type: mode_t, rdev: UInt64)

    /// Refuses, with `EINVAL`, an unknown file type, a symbolic link without a target (or
    /// another type with one) and a directory with a link key (a directory has one name).
    init(_ entry: ManifestEntry) throws {
        let type = mode_t(entry.attributes.mode) & S_IFMT
        func refuse(_ why: String) -> RefusedOperation {
            RefusedOperation(code: EINVAL, explanation: "entry '\(entry.name)': \(why)")
        }
        if type == S_IFLNK {
            guard let target = entry.symlinkTarget else { throw refuse("a symbolic link without a target") }
            self = .symlink(target)
            return
        }
        guard entry.symlinkTarget == nil else { throw refuse("a symbolic link target for an entry of mode \(String(type, radix: 8))") }
        switch type {
        case S_IFREG: self = .regular
        case S_IFDIR:
            guard entry.linkKey == 0 else { throw refuse("a directory with a link key (directories have one name)") }
            self = .directory
        case S_IFIFO: self = .fifo
        case S_IFSOCK: self = .socket
        case S_IFCHR, S_IFBLK: self = .device(type: type, rdev: entry.rdev)
        default: throw refuse("unknown file type in mode \(String(entry.attributes.mode, radix: 8))")
        }
    }

    /// `S_IFMT` bits.
    var type: mode_t {
        switch self {
        case .regular: return S_IFREG
        case .directory: return S_IFDIR
        case .symlink: return S_IFLNK
        case .fifo: return S_IFIFO
        case .socket: return S_IFSOCK
        case .device(let type, _): return type
        }
    }

    /// Whether the existing entry `name` of `dir`, of status `status`, can stay as this entry:
    /// same type, and for symbolic links the same target, for devices the same number.
    func matches(_ status: stat, name: FileName, in dir: Int32) throws -> Bool {
        guard status.st_mode & S_IFMT == type else { return false }
        switch self {
        case .symlink(let target): return try readSymlink(name, in: dir) == target.bytes
        case .device(_, let rdev): return UInt64(status.st_rdev) == rdev
        default: return true
        }
    }

    /// Creates `name` in `dir` as this kind: a regular file empty, a directory empty, a node
    /// with permissions 0600 (0700) until its attributes are set.
    func create(_ name: FileName, in dir: Int32) throws {
        try during("create '\(name)'") {
            try name.withCString { name in
                switch self {
                case .regular:
                    close(try sys { openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600) })
                case .directory:
                    try sys { mkdirat(dir, name, 0o700) }
                case .symlink(let target):
                    try target.withCString { target in try sys { symlinkat(target, dir, name) } }
                case .fifo, .socket:
                    try sys { mknodat(dir, name, type | 0o600, 0) }
                case .device(let type, let rdev):
                    try sys { mknodat(dir, name, type | 0o600, dev_t(rdev)) }
                }
            }
        }
    }

    private func readSymlink(_ name: FileName, in dir: Int32) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let length = try during("readlink '\(name)'") {
            try name.withCString { name in
                try buffer.withUnsafeMutableBytes { bytes in
                    try sys { readlinkat(dir, name, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count) }
                }
            }
        }
        return Array(buffer.prefix(length))
    }
}
