import ClusterConfig
import ControlChannel
import Glibc
import Logging
import MirrorCore
import ReplTransport

/// The daemon's side of `clusterctl`: answers one control request about this node's modules
/// (the peer's requests arrive here too, forwarded by its daemon; see ``PeerControl``).
/// Refusals say why; a refused command changes nothing.
final class ControlHandler {
    private let plan: NodePlan
    private let runtimes: [ModuleRuntime]
    private let settings: [String: ModuleSettings]
    /// Shared with the modules, which read the toggles while the operator changes them.
    private let settingsLock: Monitor
    private let logger: Logger
    /// The daemon's log file (its standard error), if it is a file.
    private let logFile: String?

    init(plan: NodePlan, runtimes: [ModuleRuntime], settings: [String: ModuleSettings], settingsLock: Monitor, logger: Logger) {
        self.plan = plan
        self.settingsLock = settingsLock
        self.runtimes = runtimes
        self.settings = settings
        self.logger = logger
        logFile = Self.standardErrorFile()
    }

    /// Answers `request` on this node (its `host` has been dealt with by the caller).
    func handle(_ request: ControlRequest) -> ControlResponse {
        if request.verb == "status" {
            guard let selected = try? modules(request.module) else { return unknownModule(request.module) }
            return ControlResponse(ok: true, status: ClusterStatusReport(node: plan.nodeName, peer: plan.peerName,
                                                                         modules: selected.map(report)))
        }
        if request.verb == "log" {
            guard let logFile else { return .refused("the daemon's output is not a file (it runs in a terminal or under journald: journalctl -u mirror)") }
            return ControlResponse(ok: true, message: logFile, logFile: logFile)
        }
        guard let name = request.module else { return .refused("\(request.verb) needs a module: -m NAME") }
        guard let runtime = runtimes.first(where: { $0.name == name }) else { return unknownModule(name) }
        switch request.verb {
        case "start": return command(.start, runtime)
        case "stop": return command(.stop, runtime)
        case "restart": return command(.restart, runtime)
        case "swap": return command(.swap, runtime)
        case "prim": return command(.prim, runtime)
        case "second": return second(runtime, confirmed: request.yes)
        case "boot": return boot(runtime, request.arguments)
        case "errd": return errd(runtime, request.arguments)
        case "checker": return checker(runtime, request.arguments)
        case "verify": return verify(runtime)
        default: return .refused("unknown verb \"\(request.verb)\"")
        }
    }

    // MARK: Commands

    private func command(_ command: Command, _ runtime: ModuleRuntime) -> ControlResponse {
        let refusals = runtime.run(command, waitingForActions: true)
        guard refusals.isEmpty else {
            return .refused("\(command.rawValue) -m \(runtime.name) refused on \(plan.nodeName): " + refusals.joined(separator: "; "))
        }
        logger.info("module \(runtime.name): \(command.rawValue) by the operator")
        return ControlResponse(ok: true, message: "\(runtime.name): \(command.rawValue) done on \(plan.nodeName); now \(pair(runtime))")
    }

    /// `second`: says what this node's copy would lose; carried out only with `--yes`.
    private func second(_ runtime: ModuleRuntime, confirmed: Bool) -> ControlResponse {
        let loss = discardedBySecond(runtime)
        // Without --yes nothing is done: the answer is what would be discarded.
        guard confirmed else { return ControlResponse(ok: true, message: loss) }
        let refusals = runtime.run(.second, waitingForActions: true)
        guard refusals.isEmpty else {
            return .refused("second -m \(runtime.name) refused on \(plan.nodeName): " + refusals.joined(separator: "; "))
        }
        logger.warning("module \(runtime.name): second by the operator: \(loss)")
        return ControlResponse(ok: true, message: "\(loss)\n\(runtime.name): second accepted on \(plan.nodeName); now \(pair(runtime))")
    }

    /// What `second` would discard here: the changes this copy holds that the peer's lacks.
    private func discardedBySecond(_ runtime: ModuleRuntime) -> String {
        let snapshot = runtime.snapshot
        guard let mine = snapshot.generations else { return "This node's data state is not loaded yet." }
        guard let theirs = snapshot.peerGenerations, runtime.peerVisible else {
            return "\(plan.peerName) is not seen now: once it is, this node takes its data; this node's changes that "
                + "\(plan.peerName) lacks are then discarded (generation \(mine) here)."
        }
        let decision = compareGenerations(local: mine, peer: theirs)
        if decision.outcome == .inSync || decision.outcome.receivePlan != nil {
            return "Nothing is discarded: this copy (\(mine)) only lacks changes of \(plan.peerName) (\(theirs)); it receives them."
        }
        var lines = ["This node's changes that \(plan.peerName) lacks are DISCARDED (\(decision)): its copy is replaced by "
            + "the copy of \(plan.peerName) (\(theirs)) by a full checksum resync."]
        for unit in runtime.units {
            let fd = unit.secondary.copyFD
            let (status, truncated) = unit.state.status(module: unit.plan.index, serving: false, rootFD: fd)
            lines.append("  \(unit.plan.name): " + ConnectExplanation.describe(plan.nodeName, status) + (truncated ? " (list truncated)" : ""))
        }
        return lines.joined(separator: "\n")
    }

    private func boot(_ runtime: ModuleRuntime, _ arguments: [String]) -> ControlResponse {
        guard let store = settings[runtime.name] else { return unknownModule(runtime.name) }
        switch arguments.first {
        case "status"?, nil:
            let on = settingsLock.locked { store.boot }
            return ControlResponse(ok: true, message: "\(runtime.name) on \(plan.nodeName): boot \(on ? "on" : "off")")
        case let value? where value == "on" || value == "off":
            return change("boot \(value)", runtime) { try store.setBoot(value == "on") }
        case let value?:
            return .refused("boot takes on, off or status, not \"\(value)\"")
        }
    }

    private func errd(_ runtime: ModuleRuntime, _ arguments: [String]) -> ControlResponse {
        guard let store = settings[runtime.name] else { return unknownModule(runtime.name) }
        switch arguments.first {
        case "enable"?: return change("errd enabled", runtime) { try store.setErrd(true) }
        case "disable"?: return change("errd disabled", runtime) { try store.setErrd(false) }
        default: return .refused("errd takes enable or disable")
        }
    }

    private func checker(_ runtime: ModuleRuntime, _ arguments: [String]) -> ControlResponse {
        guard let store = settings[runtime.name] else { return unknownModule(runtime.name) }
        guard arguments.count == 2, arguments[0] == "enable" || arguments[0] == "disable" else {
            return .refused("checker takes enable or disable, then a checker's name or all")
        }
        let known = runtime.module.checkers.map(\.name)
        let names = arguments[1] == "all" ? known : [arguments[1]]
        if let unknown = names.first(where: { !known.contains($0) }) {
            return .refused("module \(runtime.name) has no checker \"\(unknown)\" (checkers: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
        }
        let enable = arguments[0] == "enable"
        return change("checker \(arguments[1]) \(enable ? "enabled" : "disabled")", runtime) { try store.setCheckers(names, enabled: enable) }
    }

    private func change(_ what: String, _ runtime: ModuleRuntime, _ body: () throws -> Void) -> ControlResponse {
        do {
            try settingsLock.locked { try body() }
        } catch {
            return .refused("cannot record \(what): \(error)")
        }
        logger.info("module \(runtime.name): \(what) by the operator")
        return ControlResponse(ok: true, message: "\(runtime.name) on \(plan.nodeName): \(what)")
    }

    private func verify(_ runtime: ModuleRuntime) -> ControlResponse {
        var lines: [String] = []
        var identical = true
        for unit in runtime.units {
            do {
                let differences = try VerifyCommand.compare(unit.plan, of: plan, logger: logger)
                lines += differences.map { "\(unit.plan.name): \($0)" }
                lines.append("\(unit.plan.name): " + (differences.isEmpty ? "identical" : "\(differences.count) difference(s)")
                    + " between \(plan.nodeName) and \(plan.peerName)")
                identical = identical && differences.isEmpty
            } catch {
                return .refused("verify -m \(runtime.name): cannot compare: \(error)", message: lines.joined(separator: "\n"))
            }
        }
        let text = lines.joined(separator: "\n")
        return identical ? ControlResponse(ok: true, message: text) : .refused("the copies differ", message: text)
    }

    // MARK: Status

    private func modules(_ name: String?) throws -> [ModuleRuntime] {
        guard let name else { return runtimes }
        guard let runtime = runtimes.first(where: { $0.name == name }) else { throw Failure(message: name) }
        return [runtime]
    }

    private func unknownModule(_ name: String?) -> ControlResponse {
        .refused("unknown module \"\(name ?? "")\" (modules: \(runtimes.map(\.name).joined(separator: ", ")))")
    }

    private func pair(_ runtime: ModuleRuntime) -> String {
        let snapshot = runtime.snapshot
        let peer = runtime.peerVisible ? snapshot.peerState?.rawValue ?? "?" : "not seen"
        return "\(plan.nodeName) \(snapshot.state.rawValue), \(plan.peerName) \(peer)"
    }

    private func report(_ runtime: ModuleRuntime) -> ModuleReport {
        let snapshot = runtime.snapshot
        let store = settings[runtime.name]
        let (boot, errd) = settingsLock.locked { (store?.boot ?? true, store?.errdEnabled ?? true) }
        let checkers = runtime.module.checkers.map { checker in
            let enabled = settingsLock.locked { store?.isCheckerEnabled(checker.name) ?? true }
            return CheckerReport(name: checker.name, kind: checker.kind.name, enabled: enabled,
                                 up: enabled ? !snapshot.checkersDown.contains(checker.name) : nil)
        }
        let resync = runtime.units.compactMap { unit -> String? in
            guard let text = unit.status.value(of: "resync"), text != "none" else { return nil }
            return runtime.units.count == 1 ? text : "\(unit.plan.name): \(text)"
        }
        let replication = snapshot.state.isServing ? runtime.units.compactMap { unit -> String? in
            guard let text = unit.status.value(of: "peer") else { return nil }
            return runtime.units.count == 1 ? text : "\(unit.plan.name): \(text)"
        }.joined(separator: "; ") : nil
        let timeline = snapshot.timeline.map { timeline in
            FailoverTimeline(steps: [TimelineStep(name: "peer last heard (this node was \(timeline.from))", atMilliseconds: 0)]
                + timeline.steps.map { TimelineStep(name: $0.0, atMilliseconds: Int($0.1)) })
        }
        return ModuleReport(name: runtime.name, localState: snapshot.state.rawValue,
                            peerState: runtime.peerVisible ? snapshot.peerState?.rawValue : nil, peerVisible: runtime.peerVisible,
                            generations: snapshot.generations.map { "\($0)" } ?? "not loaded",
                            upToDate: snapshot.generations?.upToDate ?? false, resync: resync.isEmpty ? nil : resync.joined(separator: "; "),
                            replication: replication,
                            boot: boot, errdEnabled: errd, checkers: checkers,
                            virtualIPs: runtime.module.virtualIPs.map { "\($0.address)/\($0.prefixLength) on \($0.interface)" },
                            lastFailover: timeline, notes: snapshot.notes)
    }

    private static func standardErrorFile() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/2", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        buffer[count] = 0
        let path = String(cString: buffer)
        var st = stat()
        guard path.hasPrefix("/"), stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        return path
    }
}

extension Checker.Kind {
    /// tcp, ping, interface or script.
    var name: String {
        switch self {
        case .tcp: return "tcp"
        case .ping: return "ping"
        case .interface: return "interface"
        case .script: return "script"
        }
    }
}
