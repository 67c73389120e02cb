import Glibc

/// The persistent record of which regions of which files may differ from the peer's copy: the
/// activity log and the change map in one file (DRBD keeps them apart; one small journal is
/// enough here).
///
/// Files are keyed by inode number (the module's directory is one filesystem). Every entry is
/// on disk before the change it announces is applied:
/// - *hot* entries (connected): changes in flight to the peer. A crash leaves them on disk, so
///   the next resync resends those regions; otherwise they are dropped when the journal is
///   compacted and no change to them is in flight. Keeping them hot until then means one
///   journal write per newly touched region, not per write.
/// - *sticky* entries: changes the peer does not have (made alone, or not acknowledged). Only
///   a completed resync drops them.
///
/// The file is a header (magic, region size) then 16-byte records (inode, region; region
/// `UInt64.max` is the whole file), appended and `fdatasync`ed; compaction rewrites it atomically.
/// Loading puts every record in the sticky set. Thread-safe.
public final class RegionJournal {
    public let regionSize: UInt64
    public let path: String
    private let lock = Lock()
    private var fd: Int32
    private var sticky: [UInt64: FileRegions] = [:]
    private var hot: [UInt64: FileRegions] = [:]
    /// Taken by the resync in progress; still on disk until it completes.
    private var resyncing: [UInt64: FileRegions] = [:]
    private var inFlight: [RegionKey: Int] = [:]
    private var recordCount = 0
    private let compactionThreshold: Int

    private static let magic: [UInt8] = Array("MIRRJRN1".utf8)
    private static let headerLength = 16

    /// Opens (or creates) the journal at `path`.
    /// - Throws: ``FSError`` when the file cannot be read or written, or is not a journal.
    public init(path: String, regionSize: Int, compactionThreshold: Int = 1024) throws {
        self.path = path
        self.regionSize = UInt64(regionSize)
        self.compactionThreshold = compactionThreshold
        fd = try sys { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        do {
            try load()
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    // MARK: Changes

    /// Records `extent` before it is applied: hot while the peer gets the change, sticky when it
    /// will not (`alone`). Returns what to pass to ``settle(_:replicated:)`` once the peer answered.
    /// - Throws: the journal cannot be written: the change must not be applied.
    public func willChange(_ extent: ChangeExtent, alone: Bool) throws -> JournalMark {
        let entries = self.entries(of: extent)
        guard !entries.isEmpty else { return JournalMark(entries: []) }
        try lock.withLock {
            try record(entries, sticky: alone)
            if !alone { for entry in entries { inFlight[entry, default: 0] += 1 } }
        }
        return JournalMark(entries: alone ? [] : entries)
    }

    /// The peer applied the change (`replicated`), or will never have it (the entries become sticky).
    public func settle(_ mark: JournalMark, replicated: Bool) {
        guard !mark.entries.isEmpty else { return }
        lock.withLock {
            for entry in mark.entries {
                let left = (inFlight[entry] ?? 1) - 1
                inFlight[entry] = left > 0 ? left : nil
                if !replicated { sticky[entry.ino, default: .some([])] = (sticky[entry.ino] ?? .some([])).union(entry.regions) }
            }
        }
    }

    /// Records that these files differ from the peer until a resync sends them (a change the
    /// peer refused, a file created alone).
    public func markSticky(_ extent: ChangeExtent) throws {
        let entries = self.entries(of: extent)
        guard !entries.isEmpty else { return }
        try lock.withLock { try record(entries, sticky: true) }
    }

    // MARK: Resync

    /// Moves the sticky entries to the resync in progress and returns them (empty: nothing left).
    public func takeForResync() -> [UInt64: FileRegions] {
        lock.withLock {
            let taken = sticky
            for (ino, regions) in taken { resyncing[ino] = (resyncing[ino] ?? .some([])).union(regions) }
            sticky = [:]
            return taken
        }
    }

    /// The resync sent everything it took: those entries are dropped, on disk too.
    public func resyncCompleted() throws {
        try lock.withLock {
            resyncing = [:]
            try compact()
        }
    }

    /// The resync stopped before the end: what it took is sticky again.
    public func resyncAborted() {
        lock.withLock {
            for (ino, regions) in resyncing { sticky[ino] = (sticky[ino] ?? .some([])).union(regions) }
            resyncing = [:]
        }
    }

    /// Every entry (hot, sticky, in resync): what this node may hold that the peer does not.
    public var allEntries: [UInt64: FileRegions] {
        lock.withLock {
            var all = hot
            for (ino, regions) in sticky { all[ino] = (all[ino] ?? .some([])).union(regions) }
            for (ino, regions) in resyncing { all[ino] = (all[ino] ?? .some([])).union(regions) }
            return all
        }
    }

    /// Whether changes the peer lacks wait for a resync that has not taken them yet.
    public var hasStickyChanges: Bool { lock.withLock { !sticky.isEmpty } }

    /// Forgets everything (this copy was just made equal to the peer's by a resync it received).
    public func clear() throws {
        try lock.withLock {
            sticky = [:]
            hot = [:]
            resyncing = [:]
            inFlight = [:]
            try compact()
        }
    }

    // MARK: File

    private func entries(of extent: ChangeExtent) -> [RegionKey] {
        switch extent {
        case .none:
            return []
        case .bytes(let ino, let offset, let length):
            guard length > 0 else { return [] }
            let first = offset / regionSize
            let last = (offset + length - 1) / regionSize
            return (first...last).map { RegionKey(ino: ino, region: $0) }
        case .whole(let inos):
            return inos.map { RegionKey(ino: $0, region: RegionKey.wholeFile) }
        }
    }

    /// With the lock held: appends the entries not on disk yet (one fdatasync), then files them.
    private func record(_ entries: [RegionKey], sticky makeSticky: Bool) throws {
        let missing = entries.filter { !isOnDisk($0) }
        if !missing.isEmpty {
            if recordCount + missing.count > compactionThreshold { try compact() }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(missing.count * 16)
            for entry in missing {
                withUnsafeBytes(of: entry.ino.littleEndian) { bytes += $0 }
                withUnsafeBytes(of: entry.region.littleEndian) { bytes += $0 }
            }
            let offset = off_t(Self.headerLength + recordCount * 16)
            try writeAll(bytes, at: offset)
            try sys { fdatasync(fd) }
            recordCount += missing.count
        }
        for entry in entries {
            if makeSticky {
                sticky[entry.ino] = (sticky[entry.ino] ?? .some([])).union(entry.regions)
            } else if !(sticky[entry.ino]?.covers(entry.regions) ?? false) {
                hot[entry.ino] = (hot[entry.ino] ?? .some([])).union(entry.regions)
            }
        }
    }

    /// Checked for every write: no set is built for the question.
    private func isOnDisk(_ entry: RegionKey) -> Bool {
        func covered(by regions: FileRegions?) -> Bool {
            switch regions {
            case .whole?: return true
            case .some(let indexes)?: return entry.region != RegionKey.wholeFile && indexes.contains(entry.region)
            case nil: return false
            }
        }
        return covered(by: sticky[entry.ino]) || covered(by: hot[entry.ino]) || covered(by: resyncing[entry.ino])
    }

    /// With the lock held: rewrites the file with the sticky and resync entries and the hot
    /// entries still in flight; the others are dropped (their changes reached the peer).
    private func compact() throws {
        var kept = sticky
        for (ino, regions) in resyncing { kept[ino] = (kept[ino] ?? .some([])).union(regions) }
        var stillHot: [UInt64: FileRegions] = [:]
        for entry in inFlight.keys {
            stillHot[entry.ino] = (stillHot[entry.ino] ?? .some([])).union(entry.regions)
            kept[entry.ino] = (kept[entry.ino] ?? .some([])).union(entry.regions)
        }
        var records: [RegionKey] = []
        for (ino, regions) in kept {
            switch regions {
            case .whole: records.append(RegionKey(ino: ino, region: RegionKey.wholeFile))
            case .some(let indexes): records += indexes.map { RegionKey(ino: ino, region: $0) }
            }
        }
        var bytes = header
        for entry in records {
            withUnsafeBytes(of: entry.ino.littleEndian) { bytes += $0 }
            withUnsafeBytes(of: entry.region.littleEndian) { bytes += $0 }
        }
        let temporary = path + ".new"
        let newFD = try sys { open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600) }
        do {
            try writeAll(bytes, at: 0, to: newFD)
            try sys { fsync(newFD) }
            try sys { rename(temporary, path) }
            try syncDirectory()
        } catch {
            close(newFD)
            throw error
        }
        close(fd)
        fd = newFD
        hot = stillHot
        recordCount = records.count
    }

    private var header: [UInt8] {
        var bytes = Self.magic
        withUnsafeBytes(of: regionSize.littleEndian) { bytes += $0 }
        return bytes
    }

    private func load() throws {
        var st = stat()
        try sys { fstat(fd, &st) }
        if st.st_size == 0 {
            try writeAll(header, at: 0)
            try sys { fsync(fd) }
            try syncDirectory()
            return
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let count = try bytes.withUnsafeMutableBytes { buffer in try sys { pread(fd, buffer.baseAddress, buffer.count, 0) } }
        guard count >= Self.headerLength, Array(bytes[0..<8]) == Self.magic else {
            throw JournalError(path: path, problem: "is not a mirror journal (bad header); move it away to have the next resync compare everything by checksums")
        }
        let storedRegionSize = Self.integer(bytes, at: 8)
        // A torn last record (crash while appending) is ignored: its change was not applied yet.
        recordCount = (count - Self.headerLength) / 16
        for index in 0..<recordCount {
            let base = Self.headerLength + index * 16
            let ino = Self.integer(bytes, at: base)
            var region = Self.integer(bytes, at: base + 8)
            // Another region size: the file is resent whole rather than guessing.
            if storedRegionSize != regionSize { region = RegionKey.wholeFile }
            let entry = RegionKey(ino: ino, region: region)
            sticky[ino] = (sticky[ino] ?? .some([])).union(entry.regions)
        }
        if storedRegionSize != regionSize { try compact() }
    }

    private static func integer(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in (0..<8).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
        return value
    }

    private func writeAll(_ bytes: [UInt8], at offset: off_t, to target: Int32? = nil) throws {
        let descriptor = target ?? fd
        var done = 0
        try bytes.withUnsafeBytes { buffer in
            while done < buffer.count {
                done += try sys { pwrite(descriptor, buffer.baseAddress! + done, buffer.count - done, offset + off_t(done)) }
            }
        }
    }

    private func syncDirectory() throws {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dirFD = try sys { open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(dirFD) }
        try sys { fsync(dirFD) }
    }
}

/// What ``RegionJournal/willChange(_:alone:)`` recorded for one change in flight.
public struct JournalMark: Sendable {
    fileprivate let entries: [RegionKey]
}

/// One region of one file (region `UInt64.max`: the whole file).
private struct RegionKey: Hashable, Sendable {
    let ino: UInt64
    let region: UInt64

    static let wholeFile = UInt64.max

    var regions: FileRegions { region == Self.wholeFile ? .whole : .some([region]) }
}

/// A journal file that cannot be used as is.
public struct JournalError: ErrnoCarrying, CustomStringConvertible {
    public let path: String
    public let problem: String
    public var code: Int32 { EIO }
    public var description: String { "\(path) \(problem)" }
}
