import CLinux
import Glibc
import Logging
import ReplProtocol
import ReplTransport

/// The resync's sending side, on the node whose copy is the reference: makes the peer's copy
/// equal to this one while the application keeps writing through ReplFS.
///
/// It walks the copy under the mount (parents before children). Each directory's listing is
/// read and sent under the directory's lock; each regular file's differing regions and then
/// its attributes are read and sent under the file's lock, on the same ordered stream as live
/// changes, so a live change is never overwritten by older resync data. Which regions differ:
/// - change map: those the journal holds (taken from it at the start of each pass), those the
///   peer listed as possibly different (its own activity log), all of a file marked whole or
///   under a directory marked whole;
/// - checksum: the peer compares per-region digests and names the regions that differ.
/// The peer fails what it cannot apply yet (a live change to a file the walk has not reached);
/// those files are marked in the journal and the next pass sends them. Passes repeat until one
/// finds nothing left to send.
public final class ResyncSource {
    /// What a completed resync did.
    public struct Report: Sendable {
        public var bytesSent: UInt64
        public var regionsSent: Int
        public var filesVisited: Int
        public var passes: Int
    }

    /// The resync could not complete (the peer was lost); what it took is back in the journal.
    public struct Interrupted: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "resync interrupted: \(reason)" }
    }

    private let replicator: Replicator
    private let sender: ReplicationSender
    private let method: ResyncMethod
    private let peerDirty: [RelativePath: FileRegions]
    private let logger: Logger
    private let regionSize: UInt64
    private let progressLock = Lock()
    private var current = ResyncProgress(pass: 0, bytesSent: 0, bytesPlanned: 0, filesVisited: 0, elapsed: .zero)
    private let started = ContinuousClock.now
    private var outstanding: [(ticket: Ticket, ino: UInt64, bytes: Int)] = []
    private var outstandingBytes = 0
    private var regionsSent = 0

    /// Most bytes of region data sent and not yet acknowledged.
    private static let window = 32 << 20
    /// Regions per checksum request (the peer reads and hashes them before acknowledging).
    private static let regionsPerChecksumRequest = 32

    /// - Parameters:
    ///   - replicator: attached to `sender` in resync mode.
    ///   - peerDirty: the regions the peer holds as possibly different (its activity log).
    public init(replicator: Replicator, sender: ReplicationSender, method: ResyncMethod, peerDirty: [DirtyFile], logger: Logger) {
        self.replicator = replicator
        self.sender = sender
        self.method = method
        self.logger = logger
        regionSize = replicator.journal.regionSize
        var dirty: [RelativePath: FileRegions] = [:]
        for file in peerDirty {
            switch file.regions {
            case .whole: dirty[file.path] = .whole
            case .some(let indexes): dirty[file.path] = .some(Set(indexes))
            }
        }
        self.peerDirty = dirty
    }

    /// Where the resync is now (safe from any thread).
    public var progress: ResyncProgress {
        progressLock.withLock {
            var snapshot = current
            snapshot.elapsed = ContinuousClock.now - started
            return snapshot
        }
    }

    /// Runs passes until one finds nothing to send; the journal's entries taken are dropped only
    /// by the caller's ``RegionJournal/resyncCompleted()`` once the peer adopted the result.
    /// - Throws: ``Interrupted`` (the journal keeps what was taken).
    public func run() throws -> Report {
        var work = replicator.journal.takeForResync()
        var pass = 1
        do {
            while true {
                progressLock.withLock { current.pass = pass }
                try walk(work: work, firstPass: pass == 1)
                try drain(all: true)
                work = replicator.journal.takeForResync()
                if work.isEmpty { break }
                logger.info("module \(replicator.moduleName): resync pass \(pass) done; \(work.count) files changed meanwhile, another pass")
                pass += 1
            }
        } catch {
            replicator.journal.resyncAborted()
            throw (error as? Interrupted) ?? Interrupted(reason: "\(error)")
        }
        let final = progress
        return Report(bytesSent: final.bytesSent, regionsSent: regionsSent, filesVisited: final.filesVisited, passes: pass)
    }

    // MARK: Walk

    private struct PendingDirectory {
        let fd: Int32
        let ino: UInt64
        let path: RelativePath?
        let wholeSubtree: Bool
    }

    private func walk(work: [UInt64: FileRegions], firstPass: Bool) throws {
        let root = replicator.inodes.root
        let rootFD = try sys { fcntl(root.fd, F_DUPFD_CLOEXEC, 0) }
        var queue = [PendingDirectory(fd: rootFD, ino: root.key.ino, path: nil, wholeSubtree: work[root.key.ino] == .whole)]
        var sentLinkKeys = Set<UInt64>()
        defer { for pending in queue { close(pending.fd) } }
        while !queue.isEmpty {
            let directory = queue.removeFirst()
            defer { close(directory.fd) }
            let entries = try sendListing(of: directory)
            for listed in entries {
                guard let path = join(directory.path, listed.entry.name) else { continue }
                if listed.isDirectory {
                    let fd = openat(directory.fd, listed.nameCString, clinux_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if fd < 0 {
                        try markChangedAgain(listed.ino)
                        continue
                    }
                    queue.append(PendingDirectory(fd: fd, ino: listed.ino, path: path,
                                                  wholeSubtree: directory.wholeSubtree || work[listed.ino] == .whole))
                } else if listed.isRegularFile {
                    if listed.entry.linkKey != 0 && !sentLinkKeys.insert(listed.entry.linkKey).inserted { continue }
                    var regions = directory.wholeSubtree ? .whole : (work[listed.ino] ?? .some([]))
                    if firstPass, let theirs = peerDirty[path] { regions = regions.union(theirs) }
                    try sendFile(listed, at: path, in: directory.fd, regions: regions, compare: firstPass && method == .checksum)
                }
                try sender.checkConnected()
            }
        }
    }

    /// Reads and sends the listing of one directory under its lock; returns its entries.
    private func sendListing(of directory: PendingDirectory) throws -> [ListedEntry] {
        try replicator.inodes.changeLocks.withLock(for: directory.ino) {
            let entries = try DirectoryListing.entries(of: directory.fd)
            let attributes = try DirectoryListing.attributes(of: directory.fd)
            var part: UInt32 = 0
            var batch: [ManifestEntry] = []
            var batchBytes = 0
            func flush(last: Bool) throws {
                let manifest = DirectoryManifest(module: replicator.module, path: directory.path, attributes: attributes,
                                                 part: part, isLast: last, entries: batch)
                try track(try sender.send(.resyncDirectory(manifest)), ino: directory.ino, bytes: 0)
                part += 1
                batch = []
                batchBytes = 0
            }
            for listed in entries {
                if batch.count == DirectoryManifest.maximumEntries || batchBytes + listed.entry.encodedLengthEstimate > 1 << 20 {
                    try flush(last: false)
                }
                batch.append(listed.entry)
                batchBytes += listed.entry.encodedLengthEstimate
            }
            try flush(last: true)
            progressLock.withLock { current.filesVisited += entries.count }
            return entries
        }
    }

    /// Sends the regions of one file that differ, then its attributes, under the file's lock.
    private func sendFile(_ listed: ListedEntry, at path: RelativePath, in dirFD: Int32, regions: FileRegions, compare: Bool) throws {
        let fd = openat(dirFD, listed.nameCString, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return try markChangedAgain(listed.ino) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, UInt64(st.st_ino) == listed.ino else { return try markChangedAgain(listed.ino) }
        var indexes = regions.indexes(fileSize: UInt64(st.st_size), regionSize: regionSize)
        // Regions from this one on lie beyond the peer's end: sent unless all zeros.
        var beyondPeer = UInt64.max
        if compare { (indexes, beyondPeer) = try differingRegions(fd: fd, path: path, size: UInt64(st.st_size)) }
        progressLock.withLock { current.bytesPlanned += UInt64(indexes.count) * regionSize }
        var buffer = [UInt8](repeating: 0, count: Int(regionSize))
        for index in indexes {
            try replicator.inodes.changeLocks.withLock(for: listed.ino) {
                let count = try buffer.withUnsafeMutableBytes { raw in
                    try sys { pread(fd, raw.baseAddress, raw.count, off_t(index * regionSize)) }
                }
                guard count > 0 else { return }
                if index >= beyondPeer, Self.isZero(buffer[..<count]) {
                    progressLock.withLock { current.bytesPlanned -= regionSize }
                    return
                }
                let region = ResyncRegion(module: replicator.module, target: .path(path), offset: index * regionSize,
                                          data: buffer[..<count])
                try track(try sender.send(.resyncRegion(region)), ino: listed.ino, bytes: count)
                regionsSent += 1
                progressLock.withLock { current.bytesSent += UInt64(count) }
            }
            try drain(all: false)
        }
        try replicator.inodes.changeLocks.withLock(for: listed.ino) {
            let attributes = try DirectoryListing.attributes(of: fd)
            try track(try sender.send(.resyncFile(ResyncFile(module: replicator.module, path: path, attributes: attributes))),
                      ino: listed.ino, bytes: 0)
        }
    }

    /// Asks the peer which regions differ, `regionsPerChecksumRequest` at a time. A first,
    /// empty request learns the size of the peer's file: regions wholly beyond it differ unless
    /// they are all zeros (the peer counts bytes beyond its end as zeros), so they are neither
    /// hashed nor asked about (a fresh peer costs one round trip per file, not a digest per
    /// region); they are returned from `beyondPeer` on, and read only when sent (once).
    private func differingRegions(fd: Int32, path: RelativePath, size: UInt64) throws -> (indexes: [UInt64], beyondPeer: UInt64) {
        let count = (size + regionSize - 1) / regionSize
        var buffer = [UInt8](repeating: 0, count: Int(regionSize))
        func ask(_ digests: [RegionDigest]) throws -> RegionChecksums? {
            let request = RegionChecksums(module: replicator.module, path: path, fileSize: size,
                                          regionSize: UInt32(regionSize), digests: digests)
            let (outcome, reply) = sender.reply(to: try sender.send(.regionChecksumsRequest(request)))
            switch (outcome, reply) {
            case (.applied, .regionChecksumsReply(let answer)?): return answer.checksums
            case (.peerLost, _): throw Interrupted(reason: sender.lossReason ?? "peer lost")
            default: return nil
            }
        }
        func read(_ index: UInt64) throws -> ArraySlice<UInt8> {
            let count = try buffer.withUnsafeMutableBytes { raw in
                try sys { pread(fd, raw.baseAddress, raw.count, off_t(index * regionSize)) }
            }
            return buffer[..<count]
        }
        // No usable answer: every region is sent.
        guard let first = try ask([]) else { return (Array(0..<count), .max) }
        let compared = min(count, (first.fileSize + regionSize - 1) / regionSize)
        var differing: [UInt64] = []
        var start: UInt64 = 0
        while start < compared {
            let end = min(compared, start + UInt64(Self.regionsPerChecksumRequest))
            var digests: [RegionDigest] = []
            for index in start..<end { digests.append(RegionDigest(index: index, digest: ContentDigest(hashing: try read(index)))) }
            differing += try ask(digests)?.digests.map(\.index) ?? Array(start..<end)
            start = end
        }
        return (differing + Array(compared..<count), compared)
    }

    /// Whether every byte is zero (8 bytes at a time).
    static func isZero(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { raw in
            let words = raw.count / 8
            for word in 0..<words where raw.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self) != 0 { return false }
            for byte in raw[(words * 8)...] where byte != 0 { return false }
            return true
        }
    }

    /// The file changed under the walk (renamed, replaced, unreadable): the next pass sends it whole.
    private func markChangedAgain(_ ino: UInt64) throws {
        try replicator.journal.markSticky(.whole([ino]))
    }

    // MARK: Acknowledgements

    private func track(_ ticket: Ticket, ino: UInt64, bytes: Int) throws {
        outstanding.append((ticket, ino, bytes))
        outstandingBytes += bytes
    }

    /// Waits for acknowledgements: all of them, or until the window has room again. Files the
    /// peer could not update are marked for the next pass.
    private func drain(all: Bool) throws {
        while let first = outstanding.first, all || outstandingBytes > Self.window || outstanding.count > 4096 {
            outstanding.removeFirst()
            outstandingBytes -= first.bytes
            switch sender.wait(for: first.ticket) {
            case .applied: break
            case .failed: try markChangedAgain(first.ino)
            case .peerLost: throw Interrupted(reason: sender.lossReason ?? "peer lost")
            }
        }
    }

    private func join(_ parent: RelativePath?, _ name: FileName) -> RelativePath? {
        guard let parent else { return RelativePath(bytes: name.bytes) }
        return RelativePath(bytes: parent.bytes + [UInt8(ascii: "/")] + name.bytes)
    }
}

extension ReplicationSender {
    /// Throws when the connection is lost, so a long walk stops early.
    func checkConnected() throws {
        if !isConnected { throw ResyncSource.Interrupted(reason: lossReason ?? "peer lost") }
    }
}
