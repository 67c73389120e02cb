import Glibc
import MirrorCore
import ReplFS
import ReplProtocol

/// A replicated directory's persistent state on this node: its state directory (created 0700), data
/// generations and journal.
final class UnitState {
    let directory: String
    let generations: GenerationStore
    let journal: RegionJournal

    init(directory: String, regionSize: Int) throws {
        self.directory = directory
        try Self.makeDirectories(directory)
        generations = try GenerationStore(directory: directory)
        journal = try RegionJournal(path: directory + "/journal", regionSize: regionSize)
    }

    /// This node's status for the peer; `rootFD` is the copy's directory (for the journal's paths).
    func status(module: UInt16, serving: Bool, rootFD: Int32) -> (status: ModuleStatus, truncated: Bool) {
        let (dirty, truncated) = DirtyPaths.resolve(journal.allEntries, under: rootFD)
        return (ModuleStatus(module: module, generations: generations.generations.wire, serving: serving,
                             aloneSince: generations.aloneSince, dirty: dirty, dirtyListComplete: !truncated), truncated)
    }

    /// Creates the unit's directory (0700) and its missing ancestors (0755, as `mkdir -p`: under
    /// a path prefix they are the node's /var, /var/lib..., which applications must pass through).
    private static func makeDirectories(_ path: String) throws {
        var built = ""
        let components = path.split(separator: "/")
        for (position, component) in components.enumerated() {
            built += "/" + component
            if mkdir(built, position == components.count - 1 ? 0o700 : 0o755) != 0 && errno != EEXIST {
                throw StateFileError(path: built, problem: "cannot be created: \(FSError.last)")
            }
        }
    }
}

/// Log lines that explain a connect decision.
enum ConnectExplanation {
    /// Why two copies cannot be resynchronised automatically, with who changed what since when.
    static func refusal(_ decision: ConnectDecision, module: String, local: (name: String, status: ModuleStatus),
                        peer: (name: String, status: ModuleStatus)) -> String {
        let what: String
        switch decision.outcome {
        case .divergence:
            what = "divergence: both copies changed without the other"
        case .unrelated:
            what = "the two copies share no history (another cluster's data?)"
        case .noReference:
            what = "neither copy has any history: the operator must choose the reference"
        case .targetWithChangeMap, .behindUnknownChanges:
            what = "\(local.name)'s copy is older than \(peer.name)'s: \(local.name) must not serve it as primary"
        default:
            what = "\(decision.outcome.rawValue)"
        }
        return "module \(module): refusing to resynchronise: \(what) (rule \(decision.rule)). "
            + describe(local.name, local.status) + "; " + describe(peer.name, peer.status)
            + ". Nothing was overwritten on either node."
    }

    static func describe(_ node: String, _ status: ModuleStatus) -> String {
        let generations = DataGenerations(wire: status.generations)
        var text = "\(node) holds generation \(generations)"
        if status.aloneSince > 0 {
            text += ", served alone since \(utcText(status.aloneSince))"
        }
        if !status.dirty.isEmpty {
            let names = status.dirty.prefix(5).map(\.path.description).joined(separator: ", ")
            text += ", \(status.dirty.count) file(s) changed without the peer (\(names)\(status.dirty.count > 5 ? ", ..." : ""))"
        }
        return text
    }
}

/// A Unix time as "2026-11-26 18:01:02 UTC", for log lines and status.
func utcText(_ seconds: Int64) -> String {
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    var buffer = [CChar](repeating: 0, count: 32)
    strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S UTC", &parts)
    return String(cString: buffer)
}
