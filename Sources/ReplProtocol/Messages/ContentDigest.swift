import Crypto
import Foundation

/// A SHA-256 digest of a region's content, held inline (no allocation per region).
public struct ContentDigest: Hashable, Sendable {
    private let words: (UInt64, UInt64, UInt64, UInt64)

    /// - Returns: `nil` unless `bytes` holds exactly 32 bytes.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard bytes.count == 32 else { return nil }
        var words: [UInt64] = [0, 0, 0, 0]
        for (index, byte) in bytes.enumerated() { words[index / 8] = words[index / 8] << 8 | UInt64(byte) }
        self.words = (words[0], words[1], words[2], words[3])
    }

    public init(_ digest: SHA256.Digest) {
        self.init(bytes: Array(digest))!
    }

    /// The SHA-256 of `content`.
    public init<Content: DataProtocol>(hashing content: Content) {
        self.init(SHA256.hash(data: content))
    }

    public static func == (lhs: ContentDigest, rhs: ContentDigest) -> Bool {
        lhs.words == rhs.words
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(words.0)
        writer.append(words.1)
        writer.append(words.2)
        writer.append(words.3)
    }

    init(from reader: inout ByteReader) throws {
        words = (try reader.read(UInt64.self, "digest"), try reader.read(UInt64.self, "digest"),
                 try reader.read(UInt64.self, "digest"), try reader.read(UInt64.self, "digest"))
    }
}
