/// One row of the connect decision table: a stable name, a condition, an outcome.
public struct ConnectRule: Sendable {
    public let name: String
    public let outcome: ConnectOutcome
    let matches: @Sendable (_ local: DataGenerations, _ peer: DataGenerations) -> Bool
}

/// The connect decision table, checked top to bottom (DRBD's `uuid_compare`, with named rows).
///
/// Every row's mirror image (local and peer swapped) is also a row with the mirrored outcome,
/// so both nodes always reach the same conclusion about who leads.
public let connectRules: [ConnectRule] = [
    ConnectRule(name: "both-just-created", outcome: .noReference) { l, p in
        l.current.isJustCreated && p.current.isJustCreated
    },
    ConnectRule(name: "my-current-just-created", outcome: .behindUnknownChanges) { l, _ in
        l.current.isJustCreated
    },
    ConnectRule(name: "peer-current-just-created", outcome: .peerBehindUnknownChanges) { _, p in
        p.current.isJustCreated
    },
    ConnectRule(name: "equal-current", outcome: .inSync) { l, p in
        l.current == p.current
    },
    ConnectRule(name: "circular-history", outcome: .unrelated) { l, p in
        l.descends(from: p) && p.descends(from: l)
    },
    ConnectRule(name: "peer-current-is-my-bitmap", outcome: .sourceWithChangeMap) { l, p in
        l.bitmap == p.current
    },
    ConnectRule(name: "my-current-is-peer-bitmap", outcome: .targetWithChangeMap) { l, p in
        p.bitmap == l.current
    },
    ConnectRule(name: "both-wrote-alone", outcome: .divergence) { l, p in
        l.bitmap != nil && l.bitmap == p.bitmap
    },
    ConnectRule(name: "my-current-in-peer-history", outcome: .behindUnknownChanges) { l, p in
        p.history.contains(l.current)
    },
    ConnectRule(name: "peer-current-in-my-history", outcome: .peerBehindUnknownChanges) { l, p in
        l.history.contains(p.current)
    },
    ConnectRule(name: "common-ancestor", outcome: .divergence) { l, p in
        let mine = Set([l.bitmap].compactMap { $0 } + l.history)
        return !mine.isDisjoint(with: [p.bitmap].compactMap { $0 } + p.history)
    },
    ConnectRule(name: "unrelated-data", outcome: .unrelated) { _, _ in true },
]

extension DataGenerations {
    /// Whether `other`'s current generation is one this copy went through (bitmap or history).
    func descends(from other: DataGenerations) -> Bool {
        bitmap == other.current || history.contains(other.current)
    }
}

/// Decides, when the two nodes see each other, how their copies relate.
///
/// Pure and total: the last rule matches everything. The up-to-date flags play no part here;
/// the state machine uses them to decide who may serve.
public func compareGenerations(local: DataGenerations, peer: DataGenerations) -> ConnectDecision {
    let rule = connectRules.first { $0.matches(local, peer) }!
    return ConnectDecision(rule.outcome, rule: rule.name)
}
