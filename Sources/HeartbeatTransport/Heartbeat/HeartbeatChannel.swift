import Glibc
import Logging
import MirrorCore
import ReplTransport

/// What is known about one heartbeat path, for status output.
public struct HeartbeatPathStatus: Equatable, Sendable {
    public var index: Int
    public var path: HeartbeatPath
    /// The local address actually bound (the kernel's port when 0 was configured).
    public var boundAddress: String
    /// When the last authenticated, fresh datagram arrived on it (monotonic clock).
    public var lastReceived: ContinuousClock.Instant?
    /// Whether one arrived within the configured timeout.
    public var alive: Bool
    public var datagramsReceived: Int
    public var datagramsDropped: Int
    public var datagramsSent: Int
    /// The last send failure, until a send succeeds again.
    public var lastSendError: String?
}

/// Counters of a channel, for status and tests.
public struct HeartbeatStatistics: Equatable, Sendable {
    /// Datagrams whose heartbeats were handed to the callback.
    public var delivered = 0
    /// Fresh copies of datagrams already delivered from another path.
    public var duplicates = 0
    /// Dropped datagrams by ``HeartbeatDropReason/category`` (and "unknown-module" for single entries).
    public var dropped: [String: Int] = [:]
}

/// UDP heartbeats on every path between this node and its peer.
///
/// Binds one socket per path on this node's heartbeat address; ``send(_:)`` sends the given
/// heartbeats on every path to the peer's address of that path; a thread receives on all paths,
/// drops what is not an authenticated, fresh datagram from the peer (with a rate-limited warning),
/// and hands every module's heartbeat to the callback, once per datagram even when it arrives on
/// several paths (`path` is where the first copy came from). The callback runs on the receiving
/// thread and must not block for long (``close()`` from it stops the channel, but its addresses
/// are released only once the channel is gone).
///
/// The channel only moves datagrams: when to send and when the peer is lost is the state
/// machine's business (`ModuleNode`); per-path liveness is here for status.
public final class HeartbeatChannel {
    public typealias Handler = (_ heartbeat: Heartbeat, _ module: String, _ path: Int) -> Void

    public let configuration: HeartbeatConfiguration
    private let core: ChannelCore

    /// Binds every path's socket and starts receiving.
    /// - Throws: ``HeartbeatConfigurationError`` or ``DatagramSocketError`` (a path's address in use, unresolvable...).
    public init(configuration: HeartbeatConfiguration, logger: Logger, onHeartbeat: @escaping Handler) throws {
        try configuration.check()
        self.configuration = configuration
        core = try ChannelCore(configuration: configuration, logger: logger, handler: onHeartbeat)
        let core = core
        BackgroundThread.start { core.receiveLoop() }
    }

    deinit { core.close() }

    /// This channel's incarnation (greater after each restart); receivers refuse older ones.
    public var incarnation: UInt64 { core.incarnation }

    /// Sends the heartbeats of several modules (name to heartbeat) on every path, in as few
    /// datagrams as fit; each heartbeat's `from` must be this node.
    public func send(_ heartbeats: [String: Heartbeat]) { core.send(heartbeats) }

    /// Sends one module's heartbeat on every path.
    public func send(_ heartbeat: Heartbeat, module: String) { core.send([module: heartbeat]) }

    /// Every path's liveness and counters.
    public func status() -> [HeartbeatPathStatus] { core.status() }

    public var statistics: HeartbeatStatistics { core.statisticsSnapshot() }

    /// Stops receiving and closes the sockets (the addresses are free when it returns); waits for
    /// the receiving thread. Idempotent; later sends do nothing.
    public func close() { core.close() }
}

/// The channel's state, shared by the owner and the receiving thread.
final class ChannelCore: @unchecked Sendable {
    let configuration: HeartbeatConfiguration
    let incarnation = Incarnation.next()
    private let codec: HeartbeatCodec
    private let sockets: [DatagramSocket]
    private let handler: HeartbeatChannel.Handler
    private let logger: Logger
    private let drops: RateLimitedLog
    private let wakeup: Wakeup
    private let lock = Lock()
    private let stopped = Monitor()
    // Under `lock`:
    private var peerAddresses: [SocketAddress?]
    private var sequence: UInt64 = 0
    private var peer: PeerSequence
    private var paths: [PathCounters]
    private var statistics = HeartbeatStatistics()
    private var closing = false
    // Under `stopped`:
    private var loopFinished = false
    private var loopStarted = false
    private var loopThread: pthread_t?

    private struct PathCounters {
        var lastReceived: ContinuousClock.Instant?
        var reportedAlive = false
        var received = 0
        var dropped = 0
        var sent = 0
        var lastSendError: String?
    }

    init(configuration: HeartbeatConfiguration, logger: Logger, handler: @escaping HeartbeatChannel.Handler) throws {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
        codec = HeartbeatCodec(presharedKey: configuration.presharedKey)
        drops = RateLimitedLog(logger: logger, interval: configuration.dropLogInterval)
        wakeup = try Wakeup()
        sockets = try configuration.paths.map { try DatagramSocket.bound(to: $0.local) }
        peerAddresses = Array(repeating: nil, count: configuration.paths.count)
        peer = PeerSequence(pathCount: configuration.paths.count, silence: configuration.timeout)
        paths = Array(repeating: PathCounters(), count: configuration.paths.count)
        for (index, path) in configuration.paths.enumerated() {
            logger.info("heartbeat path \(index): \(sockets[index].local) <-> \(path.peer) (node \"\(configuration.peerName)\")")
        }
    }

    // MARK: Sending

    func send(_ heartbeats: [String: Heartbeat]) {
        var entries: [ModuleHeartbeat] = []
        for (module, heartbeat) in heartbeats.sorted(by: { $0.key < $1.key }) {
            guard heartbeat.from == configuration.nodeName else {
                logger.error("heartbeat for module \(module) not sent: it is from \"\(heartbeat.from)\", this node is \"\(configuration.nodeName)\"")
                continue
            }
            entries.append(ModuleHeartbeat(module: module, heartbeat: heartbeat))
        }
        for group in pack(entries) {
            let number: UInt64? = lock.locked {
                guard !closing else { return nil }
                sequence += 1
                return sequence
            }
            guard let number else { return }
            for index in sockets.indices {
                sendDatagram(group, sequence: number, path: index)
            }
        }
    }

    /// Groups of entries that each fit in one datagram, in order.
    private func pack(_ entries: [ModuleHeartbeat]) -> [[ModuleHeartbeat]] {
        let room = HeartbeatDatagram.maximumSize - HeartbeatCodec.overhead(cluster: configuration.clusterName, sender: configuration.nodeName)
        var groups: [[ModuleHeartbeat]] = []
        var current: [ModuleHeartbeat] = [], used = 0
        for entry in entries {
            guard let size = try? HeartbeatCodec.encodedSize(entry), size <= room else {
                logger.error("heartbeat for module \(entry.module) not sent: it does not fit in one datagram")
                continue
            }
            if used + size > room {
                groups.append(current)
                current = []
                used = 0
            }
            current.append(entry)
            used += size
        }
        if !current.isEmpty || groups.isEmpty { groups.append(current) }
        return groups
    }

    private func sendDatagram(_ entries: [ModuleHeartbeat], sequence: UInt64, path index: Int) {
        let datagram = HeartbeatDatagram(path: UInt8(index), incarnation: incarnation, sequence: sequence,
                                         cluster: configuration.clusterName, sender: configuration.nodeName, modules: entries)
        var failure: String?
        do {
            let bytes = try codec.encode(datagram)
            let address = try destination(of: index)
            // Under the lock: close() closes the sockets under it, so a send never meets a reused descriptor.
            try lock.locked {
                guard !closing else { return }
                try sockets[index].send(bytes, to: address)
                paths[index].sent += 1
                paths[index].lastSendError = nil
            }
        } catch {
            failure = "\(error)"
            lock.locked { paths[index].lastSendError = "\(error)" }
        }
        if let failure {
            drops.warning(kind: "send-\(index)", "heartbeat path \(index) (\(configuration.paths[index])): cannot send: \(failure)")
        }
    }

    /// The peer's address on a path, resolved on first use (and again after a failure).
    private func destination(of index: Int) throws -> SocketAddress {
        if let known = lock.locked({ peerAddresses[index] }) { return known }
        let wanted = sockets[index].local.family
        let candidates = try SocketAddress.resolve(configuration.paths[index].peer, passive: false)
        guard let address = candidates.first(where: { $0.family == wanted }) ?? candidates.first else {
            throw DatagramSocketError.unresolvable(host: configuration.paths[index].peer.host, reason: "no address")
        }
        lock.locked { peerAddresses[index] = address }
        return address
    }

    // MARK: Receiving

    func receiveLoop() {
        let started = stopped.locked { () -> Bool in
            loopStarted = true
            loopThread = pthread_self()
            return !loopFinished
        }
        defer { stopped.locked { loopFinished = true; stopped.broadcast() } }
        guard started else { return }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 8)
        defer { buffer.deallocate() }
        var descriptors = sockets.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
        descriptors.append(pollfd(fd: wakeup.descriptor, events: Int16(POLLIN), revents: 0))
        let checkEvery = min(configuration.timeout / 4, .seconds(1))
        while !lock.locked({ closing }) {
            let ready = poll(&descriptors, nfds_t(descriptors.count), PollTimeout.until(.now + checkEvery))
            if ready < 0 && errno != EINTR { logger.error("heartbeat: poll: \(String(cString: strerror(errno)))"); return }
            if descriptors[sockets.count].revents != 0 { return }
            for index in sockets.indices where descriptors[index].revents != 0 {
                // At most 64 per round, so that a flood on one path never starves the others.
                for _ in 0..<64 {
                    guard let (size, source) = sockets[index].receive(into: buffer) else { break }
                    let bytes = size <= buffer.count ? Array(UnsafeRawBufferPointer(rebasing: buffer[0..<size])) : []
                    handle(bytes[...], size: size, path: index, source: source)
                }
            }
            reportSilentPaths()
        }
    }

    private func handle(_ bytes: ArraySlice<UInt8>, size: Int, path index: Int, source: SocketAddress) {
        let now = ContinuousClock.now
        if size > bytes.count { return drop(.oversized(size), path: index, source: source) }
        let datagram: HeartbeatDatagram
        switch codec.decode(bytes) {
        case .failure(let reason): return drop(reason, path: index, source: source)
        case .success(let decoded): datagram = decoded
        }
        guard datagram.cluster == configuration.clusterName else { return drop(.wrongCluster(datagram.cluster), path: index, source: source) }
        guard datagram.sender != configuration.nodeName else { return drop(.fromThisNode(datagram.sender), path: index, source: source) }
        guard datagram.sender == configuration.peerName else { return drop(.unknownNode(datagram.sender), path: index, source: source) }
        guard Int(datagram.path) == index else {
            return drop(.wrongPath(sentOn: Int(datagram.path), receivedOn: index), path: index, source: source)
        }
        let (admission, previous, cameBack) = lock.locked { () -> (PeerSequence.Admission, UInt64?, Bool) in
            let previous = peer.incarnation
            let admission = peer.admit(incarnation: datagram.incarnation, sequence: datagram.sequence, path: index, now: now)
            var cameBack = false
            switch admission {
            case .refuse: break
            case .deliver, .duplicate:
                paths[index].lastReceived = now
                paths[index].received += 1
                cameBack = !paths[index].reportedAlive
                paths[index].reportedAlive = true
                if admission == .duplicate { statistics.duplicates += 1 } else { statistics.delivered += 1 }
            }
            return (admission, previous, cameBack)
        }
        if cameBack {
            logger.info("heartbeat path \(index) (\(configuration.paths[index])): receiving from node \"\(configuration.peerName)\" at \(source)")
        }
        switch admission {
        case .refuse(let reason):
            drop(reason, path: index, source: source)
        case .duplicate:
            break
        case .deliver(let restarted):
            if restarted, let previous {
                let older = datagram.incarnation < previous
                let message: String = "heartbeat: node \"\(configuration.peerName)\" has a new incarnation \(String(datagram.incarnation, radix: 16)) "
                    + "(was \(String(previous, radix: 16)))"
                if older { logger.warning("\(message), older than the last one after a silence: its clock went back?") } else { logger.info("\(message): it restarted") }
            }
            deliver(datagram, path: index, source: source)
        }
    }

    private func deliver(_ datagram: HeartbeatDatagram, path index: Int, source: SocketAddress) {
        for entry in datagram.modules {
            if let known = configuration.modules, !known.contains(entry.module) {
                lock.locked { statistics.dropped["unknown-module", default: 0] += 1 }
                drops.warning(kind: "unknown-module", "heartbeat from \(source) on path \(index): module \"\(entry.module)\" is not "
                    + "in this node's cluster file (do both nodes have the same file?); ignored")
                continue
            }
            handler(entry.heartbeat, entry.module, index)
        }
    }

    private func drop(_ reason: HeartbeatDropReason, path index: Int, source: SocketAddress) {
        lock.locked {
            statistics.dropped[reason.category, default: 0] += 1
            paths[index].dropped += 1
        }
        drops.warning(kind: "\(reason.category)-\(index)", "heartbeat: dropped a datagram from \(source) on path \(index): \(reason)")
    }

    /// Logs once when a path that was receiving goes silent for the timeout.
    private func reportSilentPaths() {
        let now = ContinuousClock.now
        let silent: [Int] = lock.locked {
            var silent: [Int] = []
            for index in paths.indices where paths[index].reportedAlive {
                if let last = paths[index].lastReceived, now - last >= configuration.timeout {
                    paths[index].reportedAlive = false
                    silent.append(index)
                }
            }
            return silent
        }
        for index in silent {
            let message = "heartbeat path \(index) (\(configuration.paths[index])): nothing from node \"\(configuration.peerName)\" "
                + "for \(configuration.timeout)"
            logger.warning("\(message)")
        }
    }

    // MARK: Status and shutdown

    func status() -> [HeartbeatPathStatus] {
        let now = ContinuousClock.now
        return lock.locked {
            paths.indices.map { index in
                let counters = paths[index]
                return HeartbeatPathStatus(
                    index: index, path: configuration.paths[index], boundAddress: sockets[index].local.description,
                    lastReceived: counters.lastReceived,
                    alive: counters.lastReceived.map { now - $0 < configuration.timeout } ?? false,
                    datagramsReceived: counters.received, datagramsDropped: counters.dropped, datagramsSent: counters.sent,
                    lastSendError: counters.lastSendError)
            }
        }
    }

    func statisticsSnapshot() -> HeartbeatStatistics { lock.locked { statistics } }

    func close() {
        let first = lock.locked { () -> Bool in
            defer { closing = true }
            return !closing
        }
        guard first else { return }
        wakeup.signal()
        let fromCallback = stopped.locked { () -> Bool in
            guard loopStarted else { loopFinished = true; return false }
            if let thread = loopThread, pthread_equal(thread, pthread_self()) != 0 { return true }
            while !loopFinished { _ = stopped.wait(until: nil) }
            return false
        }
        // Called by the callback: the loop ends after it returns; the sockets close with the channel.
        guard !fromCallback else { return }
        // The receiving thread is done and senders check `closing` under the lock: the addresses are free when this returns.
        lock.locked { for socket in sockets { socket.close() } }
    }
}
