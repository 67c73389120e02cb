import Glibc

/// The few file-system calls the library makes, each failing with a one-line reason.
enum LocalFile {
    /// The whole content of the file at `path`.
    static func read(_ path: String) throws(LocalFileError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw LocalFileError(errno: errno) }
        defer { close(descriptor) }
        var content: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw LocalFileError(errno: errno) }
            if count == 0 { return content }
            content += buffer[..<count]
        }
    }

    /// The status of `path`, following symbolic links.
    static func status(_ path: String) throws(LocalFileError) -> stat {
        var status = stat()
        guard stat(path, &status) == 0 else { throw LocalFileError(errno: errno) }
        return status
    }
}

/// A failed system call, described as strerror(3) does (`No such file or directory`).
struct LocalFileError: Error, CustomStringConvertible {
    let errno: Int32

    var isMissing: Bool { errno == ENOENT || errno == ENOTDIR }

    var description: String { String(cString: strerror(errno)) }
}
