/// How the data that differs between the two copies is found.
public enum ResyncKind: String, Sendable {
    /// Only what the source's change map lists (regions and namespace changes since the bitmap generation).
    case changeMap = "change-map"
    /// History unknown: compare per-region checksums and send the regions that differ.
    case checksum
}

/// Which way this node's side of a resync goes.
public enum ResyncDirection: String, Sendable {
    case send
    case receive
}

/// This node's part in a resync: the direction and how the differences are found.
public struct ResyncPlan: Equatable, Sendable, CustomStringConvertible {
    public var direction: ResyncDirection
    public var kind: ResyncKind

    public init(_ direction: ResyncDirection, _ kind: ResyncKind) {
        self.direction = direction
        self.kind = kind
    }

    public var description: String { "\(direction.rawValue),\(kind.rawValue)" }
}
