/// What two nodes' generation tuples say about their copies, from the local node's point of view.
public enum ConnectOutcome: String, Sendable, CaseIterable {
    /// Same data (apart from the activity-log regions, which the data layer resends).
    case inSync = "in-sync"
    /// I hold newer data and my change map covers what the peer lacks.
    case sourceWithChangeMap = "source-with-change-map"
    /// The peer holds newer data and its change map covers what I lack.
    case targetWithChangeMap = "target-with-change-map"
    /// The peer holds newer data; what changed is unknown: checksum resync towards me.
    case behindUnknownChanges = "behind-unknown-changes"
    /// I hold newer data; what changed is unknown: checksum resync towards the peer.
    case peerBehindUnknownChanges = "peer-behind-unknown-changes"
    /// Both copies changed separately (both wrote alone): refuse, wait for the operator.
    case divergence
    /// The copies share no history at all (another cluster's data?): refuse.
    case unrelated
    /// Neither copy has any history: wait for the operator to choose the reference (`prim`).
    case noReference = "no-reference"

    /// The same outcome seen from the peer.
    public var mirrored: ConnectOutcome {
        switch self {
        case .sourceWithChangeMap: return .targetWithChangeMap
        case .targetWithChangeMap: return .sourceWithChangeMap
        case .behindUnknownChanges: return .peerBehindUnknownChanges
        case .peerBehindUnknownChanges: return .behindUnknownChanges
        case .inSync, .divergence, .unrelated, .noReference: return self
        }
    }

    /// True when the local copy may be the reference (equal to or newer than the peer's).
    public var localMayLead: Bool {
        self == .inSync || self == .sourceWithChangeMap || self == .peerBehindUnknownChanges
    }

    /// True when the peer's copy may be the reference (equal to or newer than mine).
    public var peerMayLead: Bool { mirrored.localMayLead }

    /// The resync that brings the peer's copy to mine, when mine is newer.
    public var sendPlan: ResyncPlan? {
        switch self {
        case .sourceWithChangeMap: return ResyncPlan(.send, .changeMap)
        case .peerBehindUnknownChanges: return ResyncPlan(.send, .checksum)
        default: return nil
        }
    }

    /// The resync that brings my copy to the peer's, when the peer's is newer.
    public var receivePlan: ResyncPlan? {
        switch self {
        case .targetWithChangeMap: return ResyncPlan(.receive, .changeMap)
        case .behindUnknownChanges: return ResyncPlan(.receive, .checksum)
        default: return nil
        }
    }
}

/// The result of ``compareGenerations(local:peer:)``: the outcome and the stable name of the
/// decision-table rule that produced it (used in logs, `clusterctl` output and tests).
public struct ConnectDecision: Equatable, Sendable, CustomStringConvertible {
    public var outcome: ConnectOutcome
    public var rule: String

    public init(_ outcome: ConnectOutcome, rule: String) {
        self.outcome = outcome
        self.rule = rule
    }

    public var description: String { "\(outcome.rawValue) by rule \(rule)" }
}
