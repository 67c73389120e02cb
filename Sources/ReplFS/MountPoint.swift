import CLinux
import Glibc

/// Why a mount or unmount was refused; each case reads as one line for the operator.
public enum MountError: Error, Equatable, CustomStringConvertible {
    case notRoot
    case fuseDeviceMissing
    case kernelLacksFuse
    case pathMissing(String)
    case notADirectory(String)
    case alreadyMounted(String)
    case staleMountUnrecoverable(String, FSError)
    case foreignStaleMount(String, String)
    case cannotOpen(String, FSError)
    case sessionCreationFailed
    case signalHandlersFailed
    case mountFailed(String)
    case notMounted(String)
    case busy(String)
    case unmountFailed(String, FSError)

    public var description: String {
        switch self {
        case .notRoot:
            return "must run as root (mounting with allow_other over an application's directory needs it)"
        case .fuseDeviceMissing:
            return "/dev/fuse is missing: load the fuse module (modprobe fuse) and install fuse3 (apt-get install fuse3)"
        case .kernelLacksFuse:
            return "this kernel has no FUSE support (no 'fuse' in /proc/filesystems): modprobe fuse"
        case .pathMissing(let path):
            return "\(path) does not exist"
        case .notADirectory(let path):
            return "\(path) is not a directory"
        case .alreadyMounted(let path):
            return "\(path) is already mounted by ReplFS (unmount it first: mirror umount --dir \(path))"
        case .staleMountUnrecoverable(let path, let error):
            return "\(path) holds a stale ReplFS mount (its daemon died) that could not be detached: \(error)"
        case .foreignStaleMount(let path, let type):
            return "\(path) holds a dead mount of type \(type) that is not ReplFS's; unmount it yourself (umount -l \(path))"
        case .cannotOpen(let path, let error):
            return "cannot open \(path): \(error)"
        case .sessionCreationFailed:
            return "libfuse could not create a session (see the line above)"
        case .signalHandlersFailed:
            return "libfuse could not install its signal handlers"
        case .mountFailed(let path):
            return "mounting ReplFS over \(path) failed (see the line above)"
        case .notMounted(let path):
            return "\(path) is not a ReplFS mount"
        case .busy(let path):
            return "\(path) is busy: files are open on it (stop the application first, or use --lazy to detach now)"
        case .unmountFailed(let path, let error):
            return "unmounting \(path) failed: \(error)"
        }
    }
}

/// One line of /proc/self/mountinfo.
public struct MountInfo: Equatable {
    public let mountPoint: String
    public let fsType: String

    /// The mounts of the calling process's mount namespace, in mount order.
    public static func current() -> [MountInfo] {
        guard let file = fopen("/proc/self/mountinfo", "r") else { return [] }
        defer { fclose(file) }
        var mounts: [MountInfo] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        while getline(&line, &capacity, file) > 0 {
            if let mount = parse(String(cString: line!)) { mounts.append(mount) }
        }
        free(line)
        return mounts
    }

    /// Parses "id parent major:minor root mountpoint options [optional...] - fstype source superoptions".
    static func parse(_ line: String) -> MountInfo? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 7, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { return nil }
        return MountInfo(mountPoint: unescape(String(fields[4])), fsType: String(fields[dash + 1]))
    }

    /// mountinfo writes space, tab, newline and backslash as octal escapes (\040...).
    static func unescape(_ field: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Checks, recovery and helpers around the directory ReplFS mounts over.
public enum MountPoint {
    /// The filesystem type ReplFS mounts appear with in /proc/self/mountinfo.
    public static let fsType = "fuse.replfs"

    /// Verifies everything a mount needs and recovers a stale ReplFS mount left by a killed daemon.
    /// With `checkOnly`, nothing is changed: a stale mount is left for the daemon to recover.
    /// - Returns: the canonical path of the directory.
    @discardableResult
    public static func prepare(_ path: String, checkOnly: Bool = false, log: (String) -> Void) throws -> String {
        guard geteuid() == 0 else { throw MountError.notRoot }
        guard access("/dev/fuse", F_OK) == 0 else { throw MountError.fuseDeviceMissing }
        guard kernelHasFuse() else { throw MountError.kernelLacksFuse }
        var st = stat()
        if stat(path, &st) != 0 {
            switch errno {
            case ENOENT:
                throw MountError.pathMissing(path)
            case ENOTDIR:
                throw MountError.notADirectory(path)
            case ENOTCONN:
                if checkOnly { return canonicalPath(path) }
                try recoverStaleMount(path, log: log)
                return try prepare(path, log: log)
            default:
                throw MountError.cannotOpen(path, FSError.last)
            }
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw MountError.notADirectory(path) }
        guard let resolved = realpath(path, nil) else { throw MountError.cannotOpen(path, FSError.last) }
        let canonical = String(cString: resolved)
        free(resolved)
        if isReplFSMount(canonical) { throw MountError.alreadyMounted(canonical) }
        return canonical
    }

    /// Opens the backing directory before the mount hides it; every operation is relative to it.
    public static func openBacking(_ path: String) throws -> Int32 {
        do {
            return try sys { open(path, clinux_O_PATH | O_DIRECTORY | O_CLOEXEC) }
        } catch let error as FSError {
            throw MountError.cannotOpen(path, error)
        }
    }

    /// Waits until `path` is served by a filesystem other than the one on `backingDevice`
    /// (the mount answers). Returns false on timeout.
    public static func waitUntilServed(_ path: String, backingDevice: UInt64, timeoutSeconds: Double) -> Bool {
        let deadline = monotonicSeconds() + timeoutSeconds
        while monotonicSeconds() < deadline {
            var st = stat()
            if stat(path, &st) == 0, st.st_dev != backingDevice { return true }
            usleep(10_000)
        }
        return false
    }

    /// Unmounts a ReplFS mount; the daemon serving it then exits by itself.
    public static func unmount(_ path: String, lazy: Bool) throws {
        let canonical = canonicalPath(path)
        guard isReplFSMount(canonical) else { throw MountError.notMounted(canonical) }
        if umount2(canonical, lazy ? Int32(MNT_DETACH) : 0) != 0 {
            let error = FSError.last
            if error.code == EBUSY { throw MountError.busy(canonical) }
            throw MountError.unmountFailed(canonical, error)
        }
    }

    /// Whether the topmost mount at `path` is ReplFS.
    public static func isReplFSMount(_ path: String) -> Bool {
        MountInfo.current().last { $0.mountPoint == path }?.fsType == fsType
    }

    private static func recoverStaleMount(_ path: String, log: (String) -> Void) throws {
        let canonical = canonicalPath(path)
        let type = MountInfo.current().last { $0.mountPoint == canonical }?.fsType ?? "unknown"
        guard type == fsType else { throw MountError.foreignStaleMount(canonical, type) }
        log("\(canonical): stale ReplFS mount found (\"Transport endpoint is not connected\": its daemon died); detaching it")
        if umount2(canonical, Int32(MNT_DETACH)) != 0 {
            throw MountError.staleMountUnrecoverable(canonical, FSError.last)
        }
    }

    /// An absolute, normalized path without touching a possibly dead mount (no realpath on it).
    static func canonicalPath(_ path: String) -> String {
        var absolute = path
        if !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
            if getcwd(&buffer, buffer.count) != nil { absolute = String(cString: buffer) + "/" + path }
        }
        var parts: [Substring] = []
        for part in absolute.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    private static func kernelHasFuse() -> Bool {
        guard let file = fopen("/proc/filesystems", "r") else { return true }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            let fields = String(cString: line!).split(whereSeparator: { $0 == "\t" || $0 == " " || $0 == "\n" })
            if fields.last == "fuse" { return true }
        }
        return false
    }

    private static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
