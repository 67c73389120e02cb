import ArgumentParser
import Glibc

// Usage errors (a missing -m, an unknown verb or word) exit with 1, like refusals, not with
// argument-parser's 64; help and --version exit with 0.
do {
    var command = try ClusterCtl.parseAsRoot()
    try command.run()
} catch {
    if ClusterCtl.exitCode(for: error) == .validationFailure {
        Output.write(2, ClusterCtl.fullMessage(for: error) + "\n")
        exit(1)
    }
    ClusterCtl.exit(withError: error)
}
