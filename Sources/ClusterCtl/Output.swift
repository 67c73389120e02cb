import ControlChannel
import Glibc

/// What clusterctl writes: answers on standard output, `Error: ...` on standard error.
enum Output {
    /// Writes `text` and a newline to standard output.
    static func line(_ text: String) {
        write(1, text + "\n")
    }

    /// Writes `Error: reason` to standard error.
    static func error(_ reason: String) {
        write(2, "Error: \(reason)\n")
    }

    /// Writes `response` as indented JSON to standard output.
    static func json(_ response: ControlResponse) throws {
        line(try ControlJSON.pretty(response))
    }

    /// Standard output is a terminal (then states are colored).
    static var isTerminal: Bool { isatty(1) == 1 }

    /// Writes all of `text` to `fd`, unbuffered (nothing is lost when the process exits or is interrupted).
    static func write(_ fd: Int32, _ text: String) {
        write(fd, Array(text.utf8)[...])
    }

    /// Writes all of `bytes` to `fd`.
    static func write(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
        var bytes = bytes
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
