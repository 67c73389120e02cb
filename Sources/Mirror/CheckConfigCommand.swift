import ArgumentParser
import ClusterConfig
import Glibc

/// `mirror check-config --config FILE [--node NAME]`: validates a cluster file, and what one node needs of it.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a cluster file; with --node, also what that node needs (key file, scripts, directories).",
        discussion: """
        On success, prints a summary of the cluster and exits 0. Otherwise prints every problem, one per line, \
        on standard error and exits 1.
        """
    )

    @Option(name: .long, help: "The cluster file (TOML), the same on both nodes.")
    var config: String

    @Option(name: .long, help: "Also check what is local to this node: run it on the node itself.")
    var node: String?

    func run() throws {
        do {
            let cluster = try ClusterConfiguration.load(path: config)
            if let node { try cluster.checkNode(named: node) }
            print(cluster.summary)
            if let node { print("node \"\(node)\": key file, scripts and directories checked") }
        } catch let errors as ConfigurationErrors {
            // One problem per line, each starting with the file's name, as an editor or grep expects.
            for issue in errors.issues { fputs("\(issue)\n", stderr) }
            throw ExitCode(1)
        }
    }
}
