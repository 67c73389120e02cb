/// Which regions of one file may differ between the two copies.
public enum FileRegions: Equatable, Sendable {
    /// All of it (created, renamed, linked or truncated without the peer; or under a directory renamed so).
    case whole
    /// These region indexes (region `i` covers bytes `i * regionSize ..< (i + 1) * regionSize`).
    case some(Set<UInt64>)

    /// Both sets together.
    public func union(_ other: FileRegions) -> FileRegions {
        switch (self, other) {
        case (.some(let mine), .some(let theirs)): return .some(mine.union(theirs))
        default: return .whole
        }
    }

    /// Whether every region of `other` is in this set.
    func covers(_ other: FileRegions) -> Bool {
        switch (self, other) {
        case (.whole, _): return true
        case (.some, .whole): return false
        case (.some(let mine), .some(let theirs)): return theirs.isSubset(of: mine)
        }
    }

    /// The region indexes of a file of `size` bytes this set names, in increasing order.
    public func indexes(fileSize size: UInt64, regionSize: UInt64) -> [UInt64] {
        let count = (size + regionSize - 1) / regionSize
        switch self {
        case .whole: return Array(0..<count)
        case .some(let indexes): return indexes.filter { $0 < count }.sorted()
        }
    }
}

/// What one change touches, as the change map counts it: computed before the change is
/// applied, so the activity log knows it first.
public enum ChangeExtent: Equatable, Sendable {
    /// Nothing the resync's directory listings do not already carry (modes, owners, names...).
    case none
    /// `length` bytes at `offset` of file `ino`.
    case bytes(ino: UInt64, offset: UInt64, length: UInt64)
    /// The whole of these files (renamed, linked, truncated).
    case whole([UInt64])
}
