/// Both nodes' view of every module, as the node answering `status` sees it. ``render(colors:)``
/// gives the operator's text.
public struct ClusterStatusReport: Codable, Equatable, Sendable {
    /// The name of the node that answered.
    public var node: String
    /// The name of the other node.
    public var peer: String
    /// One report per module, in the cluster file's order.
    public var modules: [ModuleReport]

    public init(node: String, peer: String, modules: [ModuleReport]) {
        self.node = node
        self.peer = peer
        self.modules = modules
    }
}

/// One module on both nodes: states, data, resync, monitoring, addresses, the last failover and
/// why it is where it is.
public struct ModuleReport: Codable, Equatable, Sendable {
    /// The module's name in the cluster file.
    public var name: String
    /// This node's state: `STOP`, `WAIT`, `ALONE`, `PRIM` or `SECOND`.
    public var localState: String
    /// The peer's state as it last announced it; nil when the peer is not seen.
    public var peerState: String?
    /// Heartbeats from the peer arrive.
    public var peerVisible: Bool
    /// This node's data generations, as text (current, change map, history).
    public var generations: String
    /// This node's copy is up to date (no resync towards it outstanding or interrupted).
    public var upToDate: Bool
    /// A resync in progress: what is done and the estimated time left; nil when none runs.
    public var resync: String?
    /// Where this node serves: whether its changes reach the peer ("node2 connected, up to date",
    /// "alone (changes journaled)"); nil elsewhere.
    public var replication: String?
    /// The module starts by itself when the daemon starts (`clusterctl boot on|off`).
    public var boot: Bool
    /// Process monitoring is on (`clusterctl errd enable|disable`).
    public var errdEnabled: Bool
    /// The module's checkers.
    public var checkers: [CheckerReport]
    /// The module's virtual IPs (address with prefix length, as configured).
    public var virtualIPs: [String]
    /// How the last failover of this module went; nil when there was none since the daemon started.
    public var lastFailover: FailoverTimeline?
    /// The last refusals and the reasons the module is waiting, oldest first.
    public var notes: [String]

    public init(
        name: String, localState: String, peerState: String?, peerVisible: Bool, generations: String, upToDate: Bool,
        resync: String? = nil, replication: String? = nil, boot: Bool = true, errdEnabled: Bool = true, checkers: [CheckerReport] = [],
        virtualIPs: [String] = [], lastFailover: FailoverTimeline? = nil, notes: [String] = []
    ) {
        self.name = name
        self.localState = localState
        self.peerState = peerState
        self.peerVisible = peerVisible
        self.generations = generations
        self.upToDate = upToDate
        self.resync = resync
        self.replication = replication
        self.boot = boot
        self.errdEnabled = errdEnabled
        self.checkers = checkers
        self.virtualIPs = virtualIPs
        self.lastFailover = lastFailover
        self.notes = notes
    }
}

/// One checker of a module on the answering node.
public struct CheckerReport: Codable, Equatable, Sendable {
    /// Its name in the cluster file.
    public var name: String
    /// What it checks: `tcp`, `ping`, `interface`, `custom`...
    public var kind: String
    /// It runs (`clusterctl checker enable|disable`).
    public var enabled: Bool
    /// Its last verdict; nil before its first one, or while disabled.
    public var up: Bool?

    public init(name: String, kind: String, enabled: Bool, up: Bool?) {
        self.name = name
        self.kind = kind
        self.enabled = enabled
        self.up = up
    }
}

/// The steps of a failover, timed from the fault that caused it.
public struct FailoverTimeline: Codable, Equatable, Sendable {
    /// In the order they happened: "fault seen" (at 0), "peer declared lost", "promoted",
    /// "virtual IP added", "application started"...
    public var steps: [TimelineStep]

    public init(steps: [TimelineStep]) { self.steps = steps }
}

/// One step of a ``FailoverTimeline``.
public struct TimelineStep: Codable, Equatable, Sendable {
    /// What happened.
    public var name: String
    /// Milliseconds after the fault was seen.
    public var atMilliseconds: Int

    public init(name: String, atMilliseconds: Int) {
        self.name = name
        self.atMilliseconds = atMilliseconds
    }
}
