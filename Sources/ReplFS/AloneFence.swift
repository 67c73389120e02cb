import Glibc
import ReplTransport

/// Holds back every change that would be acknowledged without the peer, from the moment
/// replication is lost until the cluster knows the peer cannot take over with the copy it has
/// (DRBD's `fencing resource-only`, decided by the heartbeats rather than a handler).
///
/// Without it, a primary that loses replication while its peer still looks alive would
/// acknowledge changes alone at once; dying before the peer heard of its new generation, it
/// would let the peer take over without them. With it, those changes wait (the application's
/// calls block) until ``lower()``: the peer announced that its copy is out of date, or it is
/// gone. ``refuse()`` (the node stops serving) fails them with `EIO` instead.
///
/// The fence goes up only when a connected peer is lost; a node that starts serving alone
/// (the state machine decided that the peer is gone) never meets it.
public final class AloneFence {
    private enum Position {
        case open
        case raised(since: ContinuousClock.Instant)
        case refusing
    }

    private let monitor = Monitor()
    private var position = Position.open

    public init() {}

    /// When replication was lost, while changes are held; nil otherwise.
    public var raisedSince: ContinuousClock.Instant? {
        monitor.locked {
            if case .raised(let since) = position { return since }
            return nil
        }
    }

    /// A new mount serves with this fence: changes pass until replication is lost.
    public func reset() {
        monitor.locked {
            position = .open
            monitor.broadcast()
        }
    }

    /// Replication was lost: changes wait from now on (a refusing fence stays refusing).
    func raise() {
        monitor.locked {
            if case .open = position { position = .raised(since: .now) }
        }
    }

    /// The peer cannot take over with its copy any more: the held changes go on, alone.
    /// Returns whether changes were held.
    @discardableResult
    public func lower() -> Bool { leaveRaised(for: .open) }

    /// This node stops serving: the held changes, and every later one, fail with `EIO`.
    public func refuse() {
        monitor.locked {
            position = .refusing
            monitor.broadcast()
        }
    }

    /// This node stops serving while changes are held: they fail with `EIO`, and so does every
    /// later change (the stop script's too, which would otherwise wait behind them). An open
    /// fence stays open. Returns whether changes were held.
    public func refuseIfRaised() -> Bool { leaveRaised(for: .refusing) }

    private func leaveRaised(for next: Position) -> Bool {
        monitor.locked {
            guard case .raised = position else { return false }
            position = next
            monitor.broadcast()
            return true
        }
    }

    /// Returns at once while the fence is open, waits while it is raised; returns whether it waited.
    /// - Throws: `EIO` once it refuses.
    @discardableResult
    func pass() throws -> Bool {
        try monitor.locked {
            var waited = false
            while true {
                switch position {
                case .open: return waited
                case .refusing: throw FSError(EIO)
                case .raised:
                    waited = true
                    _ = monitor.wait(until: nil)
                }
            }
        }
    }
}
