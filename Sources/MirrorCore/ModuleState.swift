/// The state of one module on one node, as SafeKit names them.
public enum ModuleState: String, Sendable, CaseIterable {
    /// Not running (the daemon still exchanges heartbeats and accepts commands).
    case stop = "STOP"
    /// Running but not allowed to serve: data possibly stale, a checker failing, or waiting for the peer.
    case wait = "WAIT"
    /// Serving without a peer: replication off, changes tracked in the change map.
    case alone = "ALONE"
    /// Serving and replicating every change to the peer.
    case prim = "PRIM"
    /// Receiving the primary's changes; not up to date while a resync runs.
    case second = "SECOND"

    /// Whether the application runs here with the data writable and the virtual IP.
    public var isServing: Bool { self == .alone || self == .prim }

    /// Whether the module is started on this node.
    public var isRunning: Bool { self != .stop }
}
