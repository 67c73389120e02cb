import Glibc

/// The cluster's pre-shared key: the bytes of `key_file`, one trailing newline removed (so that
/// `openssl rand -hex 32 > FILE` makes a good key). The file must be a regular file owned by root and readable by
/// root only (mode 0600 or stricter), and the key at least 32 bytes long.
public enum PresharedKey {
    public static let minimumLength = 32

    /// Reads the key after checking the file; `failure` describes the problem in one line.
    public static func read(_ path: String) -> Result<[UInt8], PresharedKeyProblem> {
        let status: stat
        do {
            status = try LocalFile.status(path)
        } catch {
            return .failure(PresharedKeyProblem(path: path, reason: error.isMissing
                ? "does not exist (create it with: openssl rand -hex 32 > \(path) && chmod 600 \(path))"
                : "cannot be examined: \(error)"))
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            return .failure(PresharedKeyProblem(path: path, reason: "is not a regular file"))
        }
        guard status.st_uid == 0 else {
            return .failure(PresharedKeyProblem(path: path, reason: "is owned by uid \(status.st_uid), not root: run chown root: \(path)"))
        }
        let permissions = status.st_mode & 0o7777
        guard permissions & 0o177 == 0 else {
            let mode = "0" + String(permissions, radix: 8)
            return .failure(PresharedKeyProblem(path: path, reason: "has mode \(mode), which lets others than root read or "
                + "change the key: run chmod 600 \(path)"))
        }
        var key: [UInt8]
        do {
            key = try LocalFile.read(path)
        } catch {
            return .failure(PresharedKeyProblem(path: path, reason: "cannot be read: \(error)"))
        }
        if key.last == UInt8(ascii: "\n") { key.removeLast() }
        guard key.count >= minimumLength else {
            return .failure(PresharedKeyProblem(path: path, reason: "holds a key of \(key.count) bytes, at least "
                + "\(minimumLength) are needed (make one with: openssl rand -hex 32 > \(path))"))
        }
        return .success(key)
    }
}

/// Why the pre-shared key file was refused.
public struct PresharedKeyProblem: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String

    /// `key_file "PATH" REASON`.
    public var description: String { "key_file \"\(path)\" \(reason)" }
}
