/// A watched process of a module (SafeKit's errd): when it dies it is restarted locally by running the module's
/// stop then start scripts, at most `maxRestarts` times within `restartWindow`; one more death and the module
/// stops on this node so that the peer takes over.
public struct ProcessMonitor: Equatable, Sendable {
    /// How the process is recognised.
    public enum Target: Equatable, Sendable {
        /// The command name shown by `ps -e` (`/proc/PID/comm`, at most 15 characters).
        case processName(String)
        /// A file holding the process id; subject to the node's path prefix, like the replicated directories.
        case pidFile(String)
    }

    /// Defaults of the optional settings.
    public enum Defaults {
        public static let maxRestarts = 3
        public static let restartWindow = Duration.seconds(60)
    }

    /// Unique among the module's monitors and checkers.
    public var name: String
    public var target: Target
    public var maxRestarts: Int
    public var restartWindow: Duration
}

/// A periodic test of something the module needs; a failing checker makes the module leave this node.
public struct Checker: Equatable, Sendable {
    /// What is tested.
    public enum Kind: Equatable, Sendable {
        /// A TCP connection to the address is accepted.
        case tcp(Endpoint)
        /// The host answers ICMP echo.
        case ping(host: String)
        /// The network interface exists and is up.
        case interface(String)
        /// The script (absolute path) exits with status 0.
        case script(String)
    }

    /// Defaults of the optional settings.
    public enum Defaults {
        public static let interval = Duration.seconds(5)
        public static let timeout = Duration.seconds(3)
    }

    /// Unique among the module's monitors and checkers; `clusterctl checker disable NAME` uses it.
    public var name: String
    public var kind: Kind
    /// Time between two tests.
    public var interval: Duration
    /// A test not answered within this delay fails; nil for interface checkers, which only read the interface state.
    public var timeout: Duration?
}
