/// The identifier of one data generation of a module's replicated directories (DRBD's "UUID").
///
/// A new generation starts whenever a node serves without its peer. Values are random: the
/// caller injects the randomness (see ``GenerationIDSource``), so two nodes never mint the same id.
/// The value 0 is reserved for ``justCreated``.
public struct GenerationID: Hashable, Sendable, CustomStringConvertible {
    /// The raw 64-bit value, as persisted and sent in heartbeats.
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// A copy that has no known history: never initialised, or its metadata was lost or discarded.
    public static let justCreated = GenerationID(0)

    public var isJustCreated: Bool { rawValue == 0 }

    public var description: String {
        isJustCreated ? "just-created" : String(rawValue, radix: 16, uppercase: true)
    }
}
