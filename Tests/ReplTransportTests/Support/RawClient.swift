import Glibc
@testable import ReplTransport

/// A plain TCP client that sends arbitrary bytes, as a broken or hostile peer would.
enum RawClient {
    /// Connects, sends `bytes` (ignoring a refusal midway), closes its sending side, and returns
    /// everything received until the other end closed.
    static func exchange(_ bytes: [UInt8], with address: NetworkAddress) throws -> [UInt8] {
        let socket = try Socket.connected(to: address, timeout: .seconds(2))
        try? socket.send(bytes)
        _ = Glibc.shutdown(socket.descriptor, Int32(SHUT_WR))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = (try? buffer.withUnsafeMutableBytes {
                try socket.receive(into: $0, deadline: .now + .seconds(10))
            }) ?? 0
            if count == 0 { return received }
            received += buffer[..<count]
        }
    }
}
