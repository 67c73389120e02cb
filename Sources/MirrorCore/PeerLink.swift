/// What one node knows about its peer from heartbeats, and whether the peer counts as present.
///
/// The peer is *visible* when it was heard within the timeout and it echoed one of our own
/// heartbeats sent within the timeout: both directions work. It is *lost* when not visible and
/// the node has listened for at least the timeout (so a freshly started node waits first).
struct PeerLink: Sendable {
    /// The newest announcement received, if any.
    private(set) var announcement: Announcement?
    /// Our tick when the peer was last heard.
    private(set) var lastHeard: Int?
    /// Our tick at which we sent the newest heartbeat the peer echoed.
    private(set) var lastEchoed: Int?
    /// The newest stamp received from the peer, echoed back in our heartbeats.
    private(set) var newestStamp: TickStamp?
    /// Our tick when we started listening (the state machine's creation).
    let listeningSince: Int

    init(listeningSince: Int) { self.listeningSince = listeningSince }

    /// Records a heartbeat; echoes of another incarnation of ours are ignored.
    mutating func heard(_ heartbeat: Heartbeat, now: Int, ourIncarnation: UInt64) {
        if let stamp = newestStamp, stamp.incarnation == heartbeat.stamp.incarnation, stamp.tick > heartbeat.stamp.tick {
            return // reordered: an older heartbeat than one already seen
        }
        announcement = heartbeat.announcement
        lastHeard = now
        newestStamp = heartbeat.stamp
        if let echo = heartbeat.echo, echo.incarnation == ourIncarnation, echo.tick <= now {
            lastEchoed = max(lastEchoed ?? echo.tick, echo.tick)
        }
    }

    /// The link broke: the peer stops being visible until it echoes us again.
    mutating func broke() { lastEchoed = nil }

    func isVisible(now: Int, timeout: Int) -> Bool {
        guard let heard = lastHeard, let echoed = lastEchoed else { return false }
        return now - heard < timeout && now - echoed < timeout
    }

    /// Whether the peer echoed a heartbeat we sent after `tick`, so what it announces reacts to
    /// what we announced since then.
    func hasHeardUs(after tick: Int) -> Bool { (lastEchoed ?? Int.min) > tick }

    func isLost(now: Int, timeout: Int) -> Bool {
        !isVisible(now: now, timeout: timeout) && now - listeningSince >= timeout
    }

    /// The peer's announcement if the peer is heard within the timeout but has echoed none of
    /// our heartbeats for that long: it does not hear us (one-way loss).
    func oneWayAnnouncement(now: Int, timeout: Int) -> Announcement? {
        guard let heard = lastHeard, now - heard < timeout, now - listeningSince >= timeout,
              lastEchoed.map({ now - $0 >= timeout }) ?? true else { return nil }
        return announcement
    }

    /// Ticks since the peer was last heard (or since listening started).
    func silence(now: Int) -> Int { now - (lastHeard ?? listeningSince) }

    /// The peer's announcement if it is visible.
    func visibleAnnouncement(now: Int, timeout: Int) -> Announcement? {
        isVisible(now: now, timeout: timeout) ? announcement : nil
    }
}
