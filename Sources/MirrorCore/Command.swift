/// An operator command for one module on one node (SafeKit verbs).
public enum Command: String, Sendable, CaseIterable {
    /// Start the module; it finds its role with the peer.
    case start
    /// Stop the module here (the peer, if up to date, takes over).
    case stop
    /// Restart the application (stop script, start script) where it is served.
    case restart
    /// Forced start as primary: this node's data becomes the reference.
    case prim
    /// Forced start as secondary: divergent local changes are discarded, the peer's data is taken.
    case second
    /// Exchange roles: the PRIM hands the service to its up-to-date SECOND.
    case swap
}
