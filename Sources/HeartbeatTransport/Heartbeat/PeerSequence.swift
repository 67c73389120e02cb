/// Replay protection and de-duplication of the peer's datagrams.
///
/// The peer's current incarnation is the greatest accepted. On each path a datagram must carry a
/// sequence greater than the last accepted on that path in the current incarnation; a greater
/// incarnation (the peer restarted) is accepted at once and starts over. An older incarnation is
/// refused, unless the current one has been silent on every path for `silence` (the peer's clock
/// was set back across a restart): a replayed old datagram then only shows a peer that is already
/// lost, and the state machine ignores it anyway because its echo is old.
///
/// The same heartbeats arrive once per live path: the first copy of each sequence is delivered,
/// later ones only prove the path alive (a 64-sequence window, as IPsec's, tolerates paths with
/// different delays).
struct PeerSequence {
    enum Admission: Equatable {
        /// Accepted, first copy: deliver. `restarted` when a new incarnation began with it.
        case deliver(restarted: Bool)
        /// Accepted (the path is alive), already delivered from another path.
        case duplicate
        case refuse(HeartbeatDropReason)
    }

    let pathCount: Int
    let silence: Duration
    private(set) var incarnation: UInt64?
    private var lastAccepted: ContinuousClock.Instant?
    private var newestOnPath: [UInt64?]
    private var delivered = DeliveryWindow()

    init(pathCount: Int, silence: Duration) {
        self.pathCount = pathCount
        self.silence = silence
        newestOnPath = Array(repeating: nil, count: pathCount)
    }

    mutating func admit(incarnation candidate: UInt64, sequence: UInt64, path: Int, now: ContinuousClock.Instant) -> Admission {
        var restarted = false
        if let current = incarnation, candidate != current {
            if candidate < current, let last = lastAccepted, now - last < silence {
                return .refuse(.olderIncarnation(candidate, current: current))
            }
            restarted = true
        }
        if incarnation == nil || restarted {
            incarnation = candidate
            newestOnPath = Array(repeating: nil, count: pathCount)
            delivered = DeliveryWindow()
        }
        if let newest = newestOnPath[path], sequence <= newest {
            return .refuse(.replayed(incarnation: candidate, sequence: sequence, newest: newest))
        }
        newestOnPath[path] = sequence
        lastAccepted = now
        return delivered.firstTime(sequence) ? .deliver(restarted: restarted) : .duplicate
    }
}

/// Which of the last 64 sequences were delivered.
struct DeliveryWindow {
    private var newest: UInt64?
    /// Bit i: `newest - i` was delivered.
    private var bits: UInt64 = 0

    /// Whether `sequence` is seen for the first time (and records it); one older than the window counts as seen.
    mutating func firstTime(_ sequence: UInt64) -> Bool {
        guard let top = newest else {
            newest = sequence
            bits = 1
            return true
        }
        if sequence > top {
            let shift = sequence - top
            bits = shift >= 64 ? 1 : bits << shift | 1
            newest = sequence
            return true
        }
        let age = top - sequence
        guard age < 64 else { return false }
        let bit: UInt64 = 1 << age
        defer { bits |= bit }
        return bits & bit == 0
    }
}
