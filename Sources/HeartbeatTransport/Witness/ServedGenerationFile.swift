import Glibc
import MirrorCore

/// The last generation the witness let a node serve under, per module, on disk: a restarted
/// witness must still refuse a copy older than what was served (`MODULE.served`, one line
/// `NODE GENERATION-HEX`, replaced atomically and fsync'd before a grant is answered).
struct ServedGenerationFile {
    let directory: String

    /// Creates the directory (mode 0700) if needed and checks that it is writable.
    init(directory: String) throws {
        self.directory = directory
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw HeartbeatConfigurationError("state directory \(directory): \(String(cString: strerror(errno)))")
        }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw HeartbeatConfigurationError("state directory \(directory) is not writable: \(String(cString: strerror(errno)))")
        }
    }

    private func path(_ module: String) -> String { "\(directory)/\(module).served" }

    /// The recorded node and generation; nil when none was recorded.
    /// - Throws: when the file exists but cannot be read or understood (never guess).
    func load(module: String) throws -> (node: String, generation: GenerationID)? {
        let fd = open(path(module), O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw HeartbeatConfigurationError("\(path(module)): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 600)
        let size = read(fd, &buffer, buffer.count)
        guard size > 0 else { throw HeartbeatConfigurationError("\(path(module)): empty or unreadable") }
        let text = String(decoding: buffer[0..<size], as: UTF8.self)
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 2, let raw = UInt64(fields[1], radix: 16) else {
            throw HeartbeatConfigurationError("\(path(module)): expected \"NODE GENERATION\", found \(text.debugDescription)")
        }
        return (String(fields[0]), GenerationID(raw))
    }

    /// Records it durably: temporary file, fsync, rename, fsync of the directory.
    func save(module: String, node: String, generation: GenerationID) throws {
        let final = path(module), temporary = final + ".tmp"
        let line = Array("\(node) \(String(generation.rawValue, radix: 16, uppercase: true))\n".utf8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HeartbeatConfigurationError("\(temporary): \(String(cString: strerror(errno)))") }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == line.count, synced == 0 else { throw HeartbeatConfigurationError("\(temporary): \(String(cString: strerror(errno)))") }
        guard rename(temporary, final) == 0 else { throw HeartbeatConfigurationError("rename to \(final): \(String(cString: strerror(errno)))") }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            defer { close(directoryFD) }
            guard fsync(directoryFD) == 0 else { throw HeartbeatConfigurationError("fsync \(directory): \(String(cString: strerror(errno)))") }
        }
    }
}
