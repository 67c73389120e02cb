import ControlChannel
import Foundation
import Glibc
import TestSupport

/// A ControlServer in a scratch directory whose handler records every request and answers
/// with `answer`; stands in for the mirror daemon.
final class ScriptedDaemon: @unchecked Sendable {
    let scratch: ScratchDirectory
    let socketPath: String
    private(set) var server: ControlServer!
    private let lock = NSLock()
    private var received: [ControlRequest] = []
    private var answer: @Sendable (ControlRequest) -> ControlResponse

    init(limits: ControlServer.Limits = ControlServer.Limits(),
         answer: @escaping @Sendable (ControlRequest) -> ControlResponse = { _ in ControlResponse(ok: true, message: "done") }) throws {
        scratch = try ScratchDirectory("control")
        socketPath = scratch.path + "/run/control.sock"
        self.answer = answer
        server = try ControlServer(path: socketPath, limits: limits) { [unowned self] request in
            self.lock.lock()
            self.received.append(request)
            let answer = self.answer
            self.lock.unlock()
            return answer(request)
        }
    }

    deinit { server?.stop() }

    /// The requests the handler was given, in order.
    var requests: [ControlRequest] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    /// Answers the next requests with `answer`.
    func answer(with answer: @escaping @Sendable (ControlRequest) -> ControlResponse) {
        lock.lock()
        self.answer = answer
        lock.unlock()
    }
}

/// What a finished clusterctl printed and returned.
struct ClusterctlResult {
    let status: Int32
    let standardOutput: String
    let standardError: String
}

/// Runs the built clusterctl with `arguments` (and `environment` added to ours), as root unless
/// `asUser` names another (through setpriv), and waits for it.
func runClusterctl(_ arguments: [String], environment: [String: String] = [:], asUser uid: uid_t? = nil) throws -> ClusterctlResult {
    let process = Process()
    if let uid {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", clusterctlExecutable] + arguments
    } else {
        process.executableURL = URL(fileURLWithPath: clusterctlExecutable)
        process.arguments = arguments
    }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    // clusterctl writes at most a few lines on standard error: they fit in the pipe while
    // standard output is read to its end.
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ClusterctlResult(
        status: process.terminationStatus,
        standardOutput: String(decoding: outputData, as: UTF8.self),
        standardError: String(decoding: errorData, as: UTF8.self))
}

/// A raw connection to a control socket, for clients that do not follow the protocol.
final class RawConnection {
    let fd: Int32

    init(to path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestFailure("connect \(path): \(reason)")
        }
    }

    deinit { close(fd) }

    /// Sends `bytes`, as much as the server takes (it may close early).
    func send(_ bytes: [UInt8]) {
        var done = 0
        while done < bytes.count {
            let count = bytes[done...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { return }
            done += count
        }
    }

    /// Everything the server sends until it closes (at most `seconds`).
    func receiveAll(seconds: Int = 10) -> String {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The server's answer, decoded.
    func response(seconds: Int = 10) throws -> ControlResponse {
        let text = receiveAll(seconds: seconds)
        guard text.hasSuffix("\n"), text.filter({ $0 == "\n" }).count == 1 else { throw TestFailure("not one line: \(text)") }
        return try JSONDecoder().decode(ControlResponse.self, from: Data(text.utf8))
    }
}
