/// A deterministic source of fresh ``GenerationID``s (SplitMix64), seeded by the caller.
///
/// The daemon seeds it with a random value at start; tests seed it with a constant. Keeping the
/// generator inside the state machine keeps `step` pure while every minted id is unpredictable.
public struct GenerationIDSource: Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The id that the next call to ``next()`` will return, without consuming it.
    public func peek() -> GenerationID {
        var copy = self
        return copy.next()
    }

    /// A fresh id, never ``GenerationID/justCreated``.
    public mutating func next() -> GenerationID {
        while true {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            if z != 0 { return GenerationID(z) }
        }
    }
}
