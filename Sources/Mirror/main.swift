import ArgumentParser

/// The node daemon of a mirror cluster: running a node, mounting and unmounting ReplFS, checking a cluster file, the witness.
struct Mirror: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirror",
        abstract: "Mirror cluster node daemon: ReplFS mounts over the application's directories.",
        version: "0.1.0",
        subcommands: [
            MountCommand.self, UnmountCommand.self, RunCommand.self, CheckConfigCommand.self, VerifyCommand.self,
            StatusCommand.self, VirtualIPCommand.self, WitnessCommand.self,
        ]
    )
}

Mirror.main()
