import ArgumentParser
import ControlChannel
import Glibc

/// The operator's tool: every verb is one request to the node daemon's control socket.
struct ClusterCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clusterctl",
        abstract: "Operate a mirror cluster: status, start, stop, swap, prim, second, boot, errd, checkers, log, verify.",
        discussion: """
        Each verb is sent to the mirror daemon of this node through its control socket (root only); with \
        -H it acts on the named node, or on both with -H all. Options may come before or after the verb, \
        as with SafeKit: 'clusterctl boot -m AM off'.

        Exit status: 0 done, 1 refused (the reason on standard error) or wrong usage, 2 the daemon cannot \
        be reached.
        """,
        version: "0.1.0",
        subcommands: [
            StatusVerb.self, StartVerb.self, StopVerb.self, RestartVerb.self, SwapVerb.self, PrimVerb.self,
            SecondVerb.self, BootVerb.self, ErrdVerb.self, CheckerVerb.self, LogVerb.self, VerifyVerb.self,
        ]
    )

    @Option(name: .long, help: ArgumentHelp(
        "The daemon's control socket (default: $CLUSTERCTL_SOCKET, else \(ControlClient.defaultSocketPath)).",
        valueName: "path"))
    var socket: String?

    @Option(name: .customShort("H"), help: ArgumentHelp("Act on this node, or on both with 'all' (default: this node).", valueName: "node|all"))
    var host: String?

    @Flag(name: .long, help: "Print the daemon's answer as JSON.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the daemon's answer (stop and start scripts included).", valueName: "seconds"))
    var timeout: Double = 300

    func validate() throws {
        if let host, host.isEmpty { throw ValidationError("-H needs a node name, or 'all'") }
        guard timeout > 0, timeout <= 86_400 else { throw ValidationError("--timeout must be between 0 and 86400 seconds") }
    }

    /// The socket to talk to: `--socket`, else `$CLUSTERCTL_SOCKET`, else the daemon's default.
    var socketPath: String {
        if let socket { return socket }
        if let value = getenv("CLUSTERCTL_SOCKET"), value.pointee != 0 { return String(cString: value) }
        return ControlClient.defaultSocketPath
    }

    /// `--timeout` as a duration.
    var answerTimeout: Duration { .milliseconds(Int64(timeout * 1000)) }

    /// Sends `request` (aimed at `-H`'s node) and returns the answer; when the daemon cannot be
    /// reached, says why and exits with status 2.
    func send(_ request: ControlRequest) throws -> ControlResponse {
        var request = request
        request.host = host
        do {
            return try ControlClient.send(request, to: socketPath, timeout: answerTimeout)
        } catch let error as ControlClientError {
            Output.error("\(error)")
            throw ExitCode(2)
        }
    }

    /// Prints `response` (its JSON with `--json`, else `text` when given, else its message) and,
    /// when it is a refusal, `Error: reason` on standard error and exit status 1.
    func finish(_ response: ControlResponse, text: String? = nil) throws {
        if json {
            try Output.json(response)
        } else if let body = text ?? (response.message.isEmpty ? nil : response.message) {
            Output.line(body)
        }
        guard response.ok else {
            Output.error(response.error ?? "refused")
            throw ExitCode(1)
        }
    }
}

/// `-m NAME`: the module a verb applies to.
struct ModuleOption: ParsableArguments {
    @Option(name: .customShort("m"), help: ArgumentHelp("The module, by its name in the cluster file.", valueName: "name"))
    var name: String?

    /// The module, or a usage error naming `verb` when `-m` was not given.
    func required(by verb: String) throws -> String {
        guard let name, !name.isEmpty else { throw ValidationError("'\(verb)' needs a module: clusterctl \(verb) -m NAME") }
        return name
    }
}
