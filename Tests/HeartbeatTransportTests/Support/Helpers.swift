import Foundation
import Glibc
import Logging
import MirrorCore
import ReplTransport
import TestSupport

/// Log lines kept in memory, so that tests can check what an operator would read.
final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []

    var lines: [String] { lock.withLock { storage } }

    func append(_ line: String) { lock.withLock { storage.append(line) } }

    func logger(_ label: String) -> Logger {
        Logger(label: label) { _ in CapturingHandler(log: self) }
    }

    func contains(_ text: String) -> Bool { lines.contains { $0.contains(text) } }
}

struct CapturingHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        log.append("\(event.level): \(event.message)")
    }
}


/// A plain UDP socket that sends raw bytes, as an attacker or a broken peer would.
final class RawSender {
    private let fd: Int32

    init(from host: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, host, &address.sin_addr)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8], to address: NetworkAddress) {
        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_port = address.port.bigEndian
        inet_pton(AF_INET, address.host, &destination.sin_addr)
        _ = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &destination) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// The next datagram within `timeout`, if any.
    func receive(timeout: Duration) -> [UInt8]? {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, Int32(timeout / .milliseconds(1))) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let size = recv(fd, &buffer, buffer.count, 0)
        return size >= 0 ? Array(buffer[0..<size]) : nil
    }
}

/// Waits until `condition` holds, polling; false after `timeout`.
func eventually(timeout: Duration = .seconds(3), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// What a channel's callback received.
final class Inbox: @unchecked Sendable {
    struct Entry: Equatable {
        let heartbeat: Heartbeat
        let module: String
        let path: Int
    }

    private let lock = NSLock()
    private var storage: [Entry] = []

    var entries: [Entry] { lock.withLock { storage } }

    func add(_ heartbeat: Heartbeat, _ module: String, _ path: Int) {
        lock.withLock { storage.append(Entry(heartbeat: heartbeat, module: module, path: path)) }
    }

    func count(where predicate: (Entry) -> Bool) -> Int { entries.filter(predicate).count }
}

let testKey = Array("0123456789abcdef0123456789abcdef-test-key".utf8)

func sampleHeartbeat(from node: String, tick: Int, state: ModuleState = .second, echo: TickStamp? = nil) -> Heartbeat {
    let generations = DataGenerations(current: GenerationID(0xABCD), bitmap: nil, history: [GenerationID(7)], upToDate: true)
    return Heartbeat(from: node, announcement: Announcement(state: state, generations: generations, mayServe: true),
                     stamp: TickStamp(incarnation: 42, tick: tick), echo: echo)
}
