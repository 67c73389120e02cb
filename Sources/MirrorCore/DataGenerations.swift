/// What a node knows about the history of its copy of a module's data (DRBD's generation tuple).
///
/// - `current`: the generation the copy is in now.
/// - `bitmap`: the generation the change map is relative to, set while the copy changes without
///   the peer (from the moment it starts serving alone until a resync completes); nil otherwise.
/// - `history`: the two most recent earlier generations, newest first.
/// - `upToDate`: whether the copy holds every acknowledged change as far as this node knows.
///   False while it is the target of a resync, after a clean stop while the peer kept running,
///   and for a copy with no history.
///
/// Every transition returns a new value; persisting it is the caller's job (an action).
public struct DataGenerations: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var current: GenerationID
    public var bitmap: GenerationID?
    public var history: [GenerationID]
    public var upToDate: Bool

    /// How many earlier generations are kept.
    public static let historyLength = 2

    public init(current: GenerationID, bitmap: GenerationID? = nil, history: [GenerationID] = [], upToDate: Bool) {
        self.current = current
        self.bitmap = bitmap
        self.history = Array(history.prefix(Self.historyLength))
        self.upToDate = upToDate
    }

    /// A copy with no known history (first installation, lost or discarded metadata).
    public static let justCreated = DataGenerations(current: .justCreated, upToDate: false)

    /// Whether `id` is this copy's current, bitmap or historical generation.
    public func knows(_ id: GenerationID) -> Bool {
        current == id || bitmap == id || history.contains(id)
    }

    /// The generation this copy will be in once it serves without its peer, given the id that
    /// would be minted (see ``startAlone(newCurrent:)``).
    public func servingGeneration(ifMinting newCurrent: GenerationID) -> GenerationID {
        mintsWhenAlone ? newCurrent : current
    }

    /// Whether serving alone starts a new generation: only when no change map is being kept yet
    /// (DRBD mints only when the bitmap slot is empty), so a restart while alone keeps one map.
    public var mintsWhenAlone: Bool { bitmap == nil || current.isJustCreated }

    /// The copy starts changing without its peer: a new current generation; the old current
    /// becomes the bitmap generation (the change map is relative to it). A copy that already keeps
    /// a change map stays as it is. A copy with no history starts a history of its own.
    public func startAlone(newCurrent: GenerationID) -> DataGenerations {
        guard mintsWhenAlone else { return self }
        if current.isJustCreated {
            return DataGenerations(current: newCurrent, upToDate: upToDate)
        }
        return DataGenerations(current: newCurrent, bitmap: current, history: history, upToDate: upToDate)
    }

    /// The copy becomes the target of a resync: inconsistent until it completes.
    public func resyncStarted() -> DataGenerations { with(upToDate: false) }

    /// The source side once a resync completed: the change map is empty, its base becomes history.
    public func resyncFinishedAsSource() -> DataGenerations {
        guard let base = bitmap else { return self }
        return DataGenerations(current: current, history: [base] + history, upToDate: upToDate)
    }

    /// The target side once a resync completed: it adopts the source's tuple and is up to date.
    public static func resyncFinished(source: DataGenerations) -> DataGenerations {
        source.resyncFinishedAsSource().with(upToDate: true)
    }

    /// The same tuple with another up-to-date flag.
    public func with(upToDate: Bool) -> DataGenerations {
        var copy = self
        copy.upToDate = upToDate
        return copy
    }

    public var description: String {
        let map = bitmap.map { " bitmap \($0)" } ?? ""
        let old = history.isEmpty ? "" : " history " + history.map(\.description).joined(separator: ",")
        return "\(current)\(map)\(old)\(upToDate ? " up-to-date" : " outdated")"
    }
}
