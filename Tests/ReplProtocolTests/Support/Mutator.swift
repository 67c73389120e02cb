import ReplProtocol
import TestSupport

/// Damages valid byte streams the ways a broken or hostile peer would: flipped bits, overwritten
/// bytes, cuts, insertions, repeated slices, and header lengths far out of range.
struct Mutator {
    var generator: SeededGenerator

    /// `bytes` with one to four random mutations; the result always differs from the input.
    mutating func mutate(_ bytes: [UInt8]) -> [UInt8] {
        var result = bytes
        repeat {
            for _ in 0..<Int.random(in: 1...4, using: &generator) { applyOneMutation(to: &result) }
        } while result == bytes
        return result
    }

    private mutating func applyOneMutation(to bytes: inout [UInt8]) {
        guard !bytes.isEmpty else {
            bytes = generator.bytes(Int.random(in: 1...64, using: &generator))
            return
        }
        let position = Int.random(in: 0..<bytes.count, using: &generator)
        switch Int.random(in: 0..<6, using: &generator) {
        case 0:
            bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
        case 1:
            bytes[position] = UInt8.random(in: .min ... .max, using: &generator)
        case 2:
            bytes.removeSubrange(position...)
        case 3:
            bytes.insert(contentsOf: generator.bytes(Int.random(in: 1...32, using: &generator)), at: position)
        case 4:
            let end = min(bytes.count, position + Int.random(in: 1...64, using: &generator))
            bytes.insert(contentsOf: bytes[position..<end], at: end)
        default:
            // The payload length field of some frame's header set to something large.
            let magic = Array("MIRR".utf8)
            let headers = (0..<max(0, bytes.count - 11)).filter { bytes[$0..<$0 + 4].elementsEqual(magic) }
            guard let header = headers.randomElement(using: &generator) else { return }
            let length = UInt32.random(in: UInt32(WireFormat.maximumPayloadLength - 64)...UInt32.max, using: &generator)
            withUnsafeBytes(of: length.bigEndian) { bytes.replaceSubrange(header + 8..<header + 12, with: $0) }
        }
    }
}
