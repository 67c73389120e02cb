import Foundation
import Glibc
import TestSupport

/// A node's view of a cluster on this machine: a key file, executable scripts and node1's copy of the module's
/// directory under its path prefix, all in a scratch directory, and the cluster file naming them.
final class NodeFixture {
    let scratch: ScratchDirectory
    let keyFile: String
    let startScript: String
    let stopScript: String
    let checkScript: String
    let clusterFile: String

    init() throws {
        scratch = try ScratchDirectory()
        keyFile = try scratch.write("demo.key", String(repeating: "k", count: 64) + "\n", mode: 0o600)
        startScript = try scratch.write("scripts/start", "#!/bin/sh\n", mode: 0o755)
        stopScript = try scratch.write("scripts/stop", "#!/bin/sh\n", mode: 0o755)
        checkScript = try scratch.write("scripts/check", "#!/bin/sh\n", mode: 0o755)
        try scratch.makeDirectory("node1/srv/am")
        clusterFile = try scratch.write("cluster.toml", Self.clusterText(in: scratch.path), mode: 0o644)
    }

    private static func clusterText(in directory: String) -> String {
        """
        cluster = "demo"
        key_file = "\(directory)/demo.key"

        [[node]]
        name = "node1"
        replication = ["127.0.0.1:7788"]
        path_prefix = "\(directory)/node1"

        [[node]]
        name = "node2"
        replication = ["127.0.0.2:7788"]
        path_prefix = "\(directory)/node2"

        [[module]]
        name = "AM"
        directories = ["/srv/am"]
        start = "\(directory)/scripts/start"
        stop = "\(directory)/scripts/stop"

        [[module.checker]]
        name = "ready"
        type = "script"
        path = "\(directory)/scripts/check"
        """
    }
}

/// The node checks accept only a key file owned by root: like every test of this project, these fail rather
/// than skip when not run as root.
func requireRoot() throws {
    struct NotRoot: Error, CustomStringConvertible {
        var description: String { "the key file must be owned by root: run the tests as root" }
    }
    guard geteuid() == 0 else { throw NotRoot() }
}
