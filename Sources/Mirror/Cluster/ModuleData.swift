import Glibc
import MirrorCore
import ReplTransport

/// The data generations of one module on this node, as the state machine sees them: one tuple
/// for the module, kept in each of its directories' stores (docs/cluster.md, "Generations").
///
/// Two writers share the stores. The data layer writes them itself where it cannot wait for the
/// state machine: a new generation the moment replication is lost (before anything is written
/// alone), the start and end of a resync. The state machine's `persistGenerations` actions are
/// written with ``persist(_:replacing:)``, only where a store still holds what the state machine
/// last knew, so a change the data layer made meanwhile is never overwritten; ``summary`` then
/// reports it back (`Event.localDataChanged`).
final class ModuleData {
    private let stores: [GenerationStore]
    private let lock = Monitor()
    /// Directories whose copy is receiving a resync right now: never marked up to date by the
    /// state machine, only by the resync's end.
    private var receiving: Set<Int> = []

    init(stores: [GenerationStore]) {
        precondition(!stores.isEmpty, "a module has at least one directory")
        self.stores = stores
    }

    /// The module's tuple: its first directory's, up to date only if every directory is.
    var summary: DataGenerations {
        let all = stores.map(\.generations)
        return all[0].with(upToDate: all.allSatisfy(\.upToDate))
    }

    /// The data layer lost its peer in one directory: every directory of the module starts the
    /// same new generation (those that already keep a change map are left as they are).
    func startAlone() throws {
        try lock.locked {
            var random = SystemRandomNumberGenerator()
            let id = GenerationID(random.next(upperBound: UInt64.max - 1) + 1)
            for store in stores { try store.startAlone(minting: id) }
        }
    }

    /// Writes the state machine's tuple where a store still has the history `previous` had;
    /// returns false if some store had changed meanwhile (its own value stands).
    @discardableResult
    func persist(_ new: DataGenerations, replacing previous: DataGenerations?) throws -> Bool {
        try lock.locked {
            var all = true
            for (index, store) in stores.enumerated() {
                let value = receiving.contains(index) && new.upToDate ? new.with(upToDate: false) : new
                let aloneSince: Int64? = new.bitmap != nil && previous?.bitmap == nil ? Int64(time(nil)) : (new.bitmap == nil ? 0 : nil)
                let saved = try store.save(value, ifStill: { current in
                    current == value || previous.map { current.sameHistory(as: $0) } ?? current.current.isJustCreated
                }, aloneSince: aloneSince)
                all = all && saved
            }
            return all
        }
    }

    /// Marks every directory's copy not up to date (its history kept), before the state machine
    /// loads it.
    func markNotUpToDate() throws {
        try lock.locked {
            for store in stores where store.generations.upToDate {
                try store.save(store.generations.with(upToDate: false))
            }
        }
    }

    /// Records that a directory's copy started or stopped receiving a resync.
    func setReceiving(_ directory: Int, _ isReceiving: Bool) {
        lock.locked {
            if isReceiving { receiving.insert(directory) } else { receiving.remove(directory) }
        }
    }
}

extension DataGenerations {
    /// The same generations, whatever the up-to-date flag says.
    func sameHistory(as other: DataGenerations) -> Bool {
        current == other.current && bitmap == other.bitmap && history == other.history
    }
}
