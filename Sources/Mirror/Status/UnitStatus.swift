import Glibc
import ReplTransport

/// What a running node says about one replicated directory, for `mirror status`: written to
/// `STATE_DIR/MODULE/INDEX/status` (atomically) whenever it changes, and every 5 s during a
/// resync, as `key=value` lines.
final class UnitStatus {
    private let path: String
    private let lock = Monitor()
    private var fields: [(String, String)]

    init(directory: String, unit: UnitPlan, role: String) {
        path = directory + "/status"
        fields = [("pid", "\(getpid())"), ("unit", unit.name), ("directory", unit.directory), ("role", role),
                  ("peer", "not connected"), ("resync", "none"), ("since", "\(time(nil))")]
        write()
    }

    /// Sets `key` (peer, resync, last_resync, generation...) and rewrites the file.
    func set(_ key: String, _ value: String) {
        lock.locked {
            if let index = fields.firstIndex(where: { $0.0 == key }) {
                fields[index].1 = value
            } else {
                fields.append((key, value))
            }
        }
        write()
    }

    /// The current value of `key`, if set.
    func value(of key: String) -> String? {
        lock.locked { fields.first { $0.0 == key }?.1 }
    }

    private func write() {
        let text = lock.locked { fields.map { "\($0.0)=\($0.1.split(separator: "\n").joined(separator: " "))" }.joined(separator: "\n") + "\n" }
        // Best effort: status is informative; the data path never waits on it.
        try? GenerationStore.writeAtomically(text, to: path)
    }

    /// Reads a status file; nil when absent. `running` is false when its daemon is gone.
    static func read(directory: String) -> (fields: [String: String], running: Bool)? {
        guard let text = (try? GenerationStore.contents(of: directory + "/status")) ?? nil else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        let running = fields["pid"].flatMap { pid_t($0) }.map { kill($0, 0) == 0 } ?? false
        return (fields, running)
    }
}
