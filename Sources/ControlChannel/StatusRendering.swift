extension ClusterStatusReport {
    /// The report as the operator reads it, one block per module separated by blank lines, no
    /// newline at the end:
    ///
    ///     AM: node1 PRIM, node2 SECOND
    ///       data: up to date (generations 5F3A9C21D0E4B817)
    ///       resync: 42% (1.2 of 2.9 GiB), about 3 min left
    ///       boot: on, errd: enabled
    ///       checker pg-port (tcp): enabled, up
    ///       virtual IPs: 192.168.1.10/24 (here)
    ///       last failover:
    ///            0 ms  peer last heard (this node was SECOND)
    ///         3005 ms  decided to serve
    ///         3009 ms  mounted read-write
    ///         3021 ms  virtual IP added
    ///         3290 ms  application started
    ///       note: waiting for node2
    ///
    /// This node comes first on the state line. Lines with nothing to say (no resync, no checkers,
    /// no virtual IP, no failover, no notes) are left out. With `colors`, states get ANSI colors:
    /// PRIM and ALONE green, SECOND cyan, WAIT yellow, STOP red.
    public func render(colors: Bool) -> String {
        guard !modules.isEmpty else { return "no modules" }
        return modules.map { render($0, colors: colors) }.joined(separator: "\n\n")
    }

    private func render(_ module: ModuleReport, colors: Bool) -> String {
        func state(_ name: String) -> String { colors ? StateColor.paint(name) : name }
        let peerText: String
        switch (module.peerState, module.peerVisible) {
        case (let seen?, true): peerText = state(seen)
        case (let lastKnown?, false): peerText = state(lastKnown) + " (not seen)"
        case (nil, _): peerText = "not seen"
        }
        var lines = ["\(module.name): \(node) \(state(module.localState)), \(peer) \(peerText)"]
        lines.append("  data: \(module.upToDate ? "up to date" : "NOT up to date") (generations \(module.generations))")
        if let replication = module.replication { lines.append("  replication: \(replication)") }
        if let resync = module.resync { lines.append("  resync: \(resync)") }
        lines.append("  boot: \(module.boot ? "on" : "off"), errd: \(module.errdEnabled ? "enabled" : "disabled")")
        for checker in module.checkers {
            var condition = checker.enabled ? "enabled" : "disabled"
            if checker.enabled, let up = checker.up { condition += up ? ", up" : ", down" }
            lines.append("  checker \(checker.name) (\(checker.kind)): \(condition)")
        }
        if !module.virtualIPs.isEmpty {
            let here = ["PRIM", "ALONE"].contains(module.localState) ? "here" : "not here: on the serving node"
            lines.append("  virtual IPs: \(module.virtualIPs.joined(separator: ", ")) (\(here))")
        }
        if let timeline = module.lastFailover, !timeline.steps.isEmpty {
            lines.append("  last failover:")
            let width = timeline.steps.map { String($0.atMilliseconds).count }.max() ?? 1
            for step in timeline.steps {
                let milliseconds = String(step.atMilliseconds)
                lines.append("    " + String(repeating: " ", count: width - milliseconds.count) + "\(milliseconds) ms  \(step.name)")
            }
        }
        lines += module.notes.map { "  note: \($0)" }
        return lines.joined(separator: "\n")
    }
}

/// The terminal colors of module states.
enum StateColor {
    /// `state` wrapped in its ANSI color (unknown states are left plain).
    static func paint(_ state: String) -> String {
        let code: String
        switch state {
        case "PRIM", "ALONE": code = "32"
        case "SECOND": code = "36"
        case "WAIT": code = "33"
        case "STOP": code = "31"
        default: return state
        }
        return "\u{1B}[\(code)m\(state)\u{1B}[0m"
    }
}
