import ArgumentParser

/// The operator's tool. The control verbs arrive with the cluster daemon; for now it says so.
@main
struct ClusterCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clusterctl",
        abstract: "Operate a mirror cluster (status, start, stop, prim, second, swap, boot...).",
        discussion: "The control verbs need the cluster daemon (mirror run), which is not part of this version yet.",
        version: "0.1.0"
    )

    func run() throws {
        throw ValidationError("no control verbs yet: this version only provides 'mirror mount' and 'mirror umount'")
    }
}
