extension ClusterConfiguration {
    /// A few lines for the operator: the cluster, its nodes, and each module's directories, VIPs, scripts and checkers.
    public var summary: String {
        var lines = [
            "cluster \"\(name)\": \(nodes.count) nodes, \(modules.count) module\(modules.count == 1 ? "" : "s"); key file \(keyFile)",
            "  heartbeat every \(heartbeatInterval.secondsText) s, peer lost after \(heartbeatTimeout.secondsText) s; "
                + "ack timeout \(ackTimeout.secondsText) s; region size \(Self.byteSize(regionSize)); "
                + (witness.map { "witness \($0.address)" } ?? "no witness"),
        ]
        for node in nodes {
            var line = "node \"\(node.name)\": replication \(Self.list(node.replicationAddresses)); "
                + "heartbeat \(Self.list(node.heartbeatAddresses))"
            if let prefix = node.pathPrefix { line += "; path prefix \(prefix)" }
            lines.append(line)
        }
        for module in modules {
            lines.append("module \"\(module.name)\":")
            lines.append("  directories: " + module.directories.joined(separator: ", "))
            lines.append("  virtual IPs: " + (module.virtualIPs.isEmpty ? "none" : Self.list(module.virtualIPs)))
            lines.append("  scripts: " + (module.scripts.map { "start \($0.start), stop \($0.stop)" } ?? "none"))
            lines.append("  processes: " + (module.processMonitors.isEmpty ? "none" : module.processMonitors.map(Self.describe).joined(separator: ", ")))
            lines.append("  checkers: " + (module.checkers.isEmpty ? "none" : module.checkers.map(Self.describe).joined(separator: ", ")))
        }
        return lines.joined(separator: "\n")
    }

    private static func list<T: CustomStringConvertible>(_ items: [T]) -> String {
        items.map(\.description).joined(separator: ", ")
    }

    private static func describe(_ monitor: ProcessMonitor) -> String {
        let target: String
        switch monitor.target {
        case .processName(let name): target = "process \(name)"
        case .pidFile(let path): target = "pid file \(path)"
        }
        return "\(monitor.name) (\(target), at most \(monitor.maxRestarts) restarts in \(monitor.restartWindow.secondsText) s)"
    }

    private static func describe(_ checker: Checker) -> String {
        let what: String
        switch checker.kind {
        case .tcp(let endpoint): what = "tcp \(endpoint)"
        case .ping(let host): what = "ping \(host)"
        case .interface(let interface): what = "interface \(interface)"
        case .script(let path): what = "script \(path)"
        }
        return "\(checker.name) (\(what), every \(checker.interval.secondsText) s)"
    }

    /// A power of two of at least 4096 bytes, in the largest binary unit that divides it.
    private static func byteSize(_ bytes: Int) -> String {
        for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes % size == 0 {
            return "\(bytes / size) \(unit)"
        }
        return "\(bytes) bytes"
    }
}
