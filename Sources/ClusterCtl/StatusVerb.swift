import ArgumentParser
import ControlChannel
import Glibc

/// `status [-m NAME] [--watch [--interval S]]`.
struct StatusVerb: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Both nodes' states of every module (or one), resync, checkers, flags, last failover.")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption

    @Flag(name: .long, help: "Show it again every interval until interrupted.")
    var watch = false

    @Option(name: .long, help: ArgumentHelp("Seconds between two views with --watch.", valueName: "seconds"))
    var interval: Double = 2

    func validate() throws {
        guard interval >= 0.1, interval <= 3600 else { throw ValidationError("--interval must be between 0.1 and 3600 seconds") }
    }

    func run() throws {
        let request = ControlRequest(verb: "status", module: module.name, host: root.host)
        guard watch else {
            let response = try root.send(request)
            return try root.finish(response, text: response.status?.render(colors: Output.isTerminal))
        }
        // Until interrupted: a daemon that cannot be reached is shown as such, and tried again.
        while true {
            // On a terminal each view replaces the last; JSON views follow one another, undecorated.
            var screen = root.json ? "" : "clusterctl status, every \(interval) s\n\n"
            if Output.isTerminal && !root.json { screen = "\u{1B}[H\u{1B}[2J" + screen }
            do {
                let response = try ControlClient.send(request, to: root.socketPath, timeout: root.answerTimeout)
                screen += try text(of: response)
                if !response.ok { screen += "\nError: \(response.error ?? "refused")" }
            } catch let error as ControlClientError {
                screen += "Error: \(error)"
            }
            Output.write(1, screen + "\n")
            usleep(useconds_t(interval * 1_000_000))
        }
    }

    /// What one answer shows: its JSON with `--json`, else the rendered report, else its message.
    private func text(of response: ControlResponse) throws -> String {
        if root.json { return try ControlJSON.pretty(response) }
        if let status = response.status { return status.render(colors: Output.isTerminal) }
        return response.message
    }
}
