import ArgumentParser
import Glibc

/// `mirror status --config FILE --node NAME`: what this node's `mirror run` reports for each
/// replicated directory (role, peer, resync progress with rate and ETA, generation), read from
/// the status files in the state directory; the daemon need not answer.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show this node's replicated directories: role, peer, resync progress, generation."
    )

    @Option(name: .long, help: "The cluster file (TOML), the same on both nodes.")
    var config: String

    @Option(name: .long, help: "This node's name in the cluster file.")
    var node: String

    func run() throws {
        let plan: NodePlan
        do {
            plan = try NodePlan.load(config: config, node: node)
        } catch {
            print("status: \(error)")
            throw ExitCode(2)
        }
        for unit in plan.units {
            guard let (fields, running) = UnitStatus.read(directory: unit.stateDirectory) else {
                print("\(unit.name) (\(unit.directory)): no status: mirror run has not run here")
                continue
            }
            guard running else {
                print("\(unit.name) (\(unit.directory)): not running (last \(fields["role"] ?? "?") pid \(fields["pid"] ?? "?"))"
                    + (fields["generation"].map { "; generation \($0)" } ?? ""))
                continue
            }
            print("\(unit.name) (\(unit.directory)): \(plan.nodeName) \(fields["role"] ?? "?"), pid \(fields["pid"] ?? "?")")
            for key in ["peer", "resync", "last_resync", "generation"] {
                if let value = fields[key] { print("  \(key): \(value)") }
            }
        }
    }
}
