import ArgumentParser
import ControlChannel

/// A verb that takes a module and nothing else: sends it and prints the answer.
protocol PlainModuleVerb: ParsableCommand {
    var root: ClusterCtl { get }
    var module: ModuleOption { get }
}

extension PlainModuleVerb {
    func validate() throws { _ = try module.required(by: Self.verb) }

    func run() throws {
        let request = ControlRequest(verb: Self.verb, module: try module.required(by: Self.verb))
        try root.finish(try root.send(request))
    }

    /// The verb's name, sent as is.
    static var verb: String { configuration.commandName ?? "" }
}

/// `start -m NAME`.
struct StartVerb: PlainModuleVerb {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start the module (as primary or secondary, as the cluster decides).")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption
}

/// `stop -m NAME`.
struct StopVerb: PlainModuleVerb {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop the module: its application, mounts and virtual IPs (STOP).")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption
}

/// `restart -m NAME`.
struct RestartVerb: PlainModuleVerb {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart the module's application in its current role.")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption
}

/// `swap -m NAME`.
struct SwapVerb: PlainModuleVerb {
    static let configuration = CommandConfiguration(commandName: "swap", abstract: "Swap the roles: the secondary becomes primary (planned switchover).")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption
}

/// `prim -m NAME`.
struct PrimVerb: PlainModuleVerb {
    static let configuration = CommandConfiguration(
        commandName: "prim",
        abstract: "Force start as primary: this node's data becomes the reference.")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption
}

/// `verify -m NAME`.
struct VerifyVerb: PlainModuleVerb {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Compare the module's copies on both nodes by checksums (changes nothing).")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption
}

/// `second -m NAME [--yes]`: without `--yes`, only asks what would be discarded.
struct SecondVerb: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "second",
        abstract: "Force start as secondary: this node's divergent changes are discarded.",
        discussion: "Without --yes nothing is done: the daemon says what would be discarded, and clusterctl exits with 1.")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption

    @Flag(name: .long, help: "Discard this node's divergent changes.")
    var yes = false

    func validate() throws { _ = try module.required(by: "second") }

    func run() throws {
        let response = try root.send(ControlRequest(verb: "second", module: try module.required(by: "second"), yes: yes))
        guard !yes, response.ok else { return try root.finish(response) }
        if root.json { try Output.json(response) } else if !response.message.isEmpty { Output.line(response.message) }
        Output.error("nothing done: rerun with --yes to start this node as secondary and discard what is listed above")
        throw ExitCode(1)
    }
}

/// `on` / `off` / `status` for `boot`.
enum BootSetting: String, ExpressibleByArgument, CaseIterable {
    case on, off, status
}

/// `boot -m NAME on|off|status`.
struct BootVerb: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Whether the module starts when the daemon starts (at boot): on, off, or show it.")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption

    @Argument(help: "on, off or status.")
    var setting: BootSetting

    func validate() throws { _ = try module.required(by: "boot") }

    func run() throws {
        let request = ControlRequest(verb: "boot", module: try module.required(by: "boot"), arguments: [setting.rawValue])
        try root.finish(try root.send(request))
    }
}

/// `enable` / `disable` for `errd` and `checker`.
enum Toggle: String, ExpressibleByArgument, CaseIterable {
    case enable, disable
}

/// `errd -m NAME disable|enable`.
struct ErrdVerb: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "errd", abstract: "Suspend or resume the monitoring of the module's processes.")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption

    @Argument(help: "disable or enable.")
    var action: Toggle

    func validate() throws { _ = try module.required(by: "errd") }

    func run() throws {
        let request = ControlRequest(verb: "errd", module: try module.required(by: "errd"), arguments: [action.rawValue])
        try root.finish(try root.send(request))
    }
}

/// `checker -m NAME disable|enable CHECKER|all`.
struct CheckerVerb: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checker", abstract: "Disable or enable one of the module's checkers, or all of them.")
    @ParentCommand var root: ClusterCtl
    @OptionGroup var module: ModuleOption

    @Argument(help: "disable or enable.")
    var action: Toggle

    @Argument(help: ArgumentHelp("The checker's name in the cluster file, or 'all'.", valueName: "checker"))
    var checker: String

    func validate() throws {
        _ = try module.required(by: "checker")
        guard !checker.isEmpty else { throw ValidationError("'checker' needs a checker name, or 'all'") }
    }

    func run() throws {
        let request = ControlRequest(verb: "checker", module: try module.required(by: "checker"), arguments: [action.rawValue, checker])
        try root.finish(try root.send(request))
    }
}
