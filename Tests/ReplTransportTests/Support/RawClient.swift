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

/// SplitMix64: a small deterministic generator, so every random test replays from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &self) }
    }
}
