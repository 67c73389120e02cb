/// One unit of high availability: replicated directories, virtual IPs, the application's scripts and its checkers.
public struct Module: Equatable, Sendable {
    /// Unique in the cluster; letters, digits, `_` and `-`.
    public var name: String
    /// Absolute paths, none inside another (of this module or any other); ReplFS mounts over each.
    public var directories: [String]
    /// Addresses added on the node where the module serves (PRIM or ALONE).
    public var virtualIPs: [VirtualIP]
    /// Run to start the application where the module starts serving, and to stop it; both or neither.
    public var scripts: Scripts?
    /// Processes watched and restarted locally (SafeKit's errd).
    public var processMonitors: [ProcessMonitor]
    /// TCP, ping, interface and custom-script checkers.
    public var checkers: [Checker]
}

/// The application's start and stop scripts of a module.
public struct Scripts: Equatable, Sendable {
    public var start: String
    public var stop: String
}
