import TOMLKit

/// Reads `[[module.process]]` and `[[module.checker]]` tables.
enum CheckerDecoder {
    static let processKeys = ["name", "process_name", "pid_file", "max_restarts", "restart_window"]
    static let checkerTypes = ["tcp", "ping", "interface", "script"]
    static let commonCheckerKeys = ["name", "type", "interval", "timeout"]
    /// `/proc/PID/comm` holds at most 15 characters.
    static let maximumProcessNameLength = 15

    /// Reads the `ordinal`th `[[module.process]]` table of the module named in messages by `moduleContext`.
    static func decodeProcessMonitor(_ table: TOMLTable, moduleContext: String, ordinal: Int, log: IssueLog) -> ProcessMonitor? {
        var reader = TableReader(table: table, context: "\(moduleContext): [[module.process]] \(ordinal)", log: log)
        let name = reader.readName()
        if let name { reader.context = "\(moduleContext): process \"\(name)\"" }
        reader.refuseUnknownKeys(accepted: processKeys)
        let target = readProcessTarget(reader)
        let defaults = ProcessMonitor.Defaults.self
        let maxRestarts = reader.readInteger("max_restarts", in: 0...100, default: defaults.maxRestarts)
        let restartWindow = reader.readSeconds("restart_window", default: defaults.restartWindow)
        guard let name, let target else { return nil }
        return ProcessMonitor(name: name, target: target, maxRestarts: maxRestarts, restartWindow: restartWindow)
    }

    private static func readProcessTarget(_ reader: TableReader) -> ProcessMonitor.Target? {
        switch (reader.has("process_name"), reader.has("pid_file")) {
        case (true, true):
            reader.report("give process_name or pid_file, not both")
            return nil
        case (false, false):
            reader.report("missing key \"process_name\" (the command name shown by ps -e) or \"pid_file\" (an absolute path)")
            return nil
        case (true, false):
            let expected = "a command name as shown by ps -e: 1 to \(maximumProcessNameLength) characters, no '/'"
            return reader.read("process_name", required: true, expected: expected) { value in
                value.string.flatMap { (1...maximumProcessNameLength).contains($0.count) && !$0.contains("/") ? $0 : nil }
            }.map(ProcessMonitor.Target.processName)
        case (false, true):
            return reader.readPath("pid_file", required: true).map(ProcessMonitor.Target.pidFile)
        }
    }

    /// Reads the `ordinal`th `[[module.checker]]` table of the module named in messages by `moduleContext`.
    static func decodeChecker(_ table: TOMLTable, moduleContext: String, ordinal: Int, log: IssueLog) -> Checker? {
        var reader = TableReader(table: table, context: "\(moduleContext): [[module.checker]] \(ordinal)", log: log)
        let name = reader.readName()
        if let name { reader.context = "\(moduleContext): checker \"\(name)\"" }
        let typeList = checkerTypes.map { "\"\($0)\"" }.joined(separator: ", ")
        let type = reader.read("type", required: true, expected: "one of \(typeList)") { value in
            value.string.flatMap { checkerTypes.contains($0) ? $0 : nil }
        }
        guard let type else { return nil }
        reader.refuseUnknownKeys(accepted: acceptedCheckerKeys(type: type))
        let interval = reader.readSeconds("interval", default: Checker.Defaults.interval)
        let timeout = type == "interface" ? nil : reader.readSeconds("timeout", default: Checker.Defaults.timeout)
        if let timeout, timeout > interval {
            reader.report("timeout (\(timeout.secondsText) s) must not exceed interval (\(interval.secondsText) s)")
        }
        guard let kind = readKind(type: type, reader), let name else { return nil }
        return Checker(name: name, kind: kind, interval: interval, timeout: timeout)
    }

    private static func acceptedCheckerKeys(type: String) -> [String] {
        switch type {
        case "tcp": return commonCheckerKeys + ["address"]
        case "ping": return commonCheckerKeys + ["host"]
        case "interface": return ["name", "type", "interval", "interface"]
        default: return commonCheckerKeys + ["path"]
        }
    }

    private static func readKind(type: String, _ reader: TableReader) -> Checker.Kind? {
        switch type {
        case "tcp":
            return reader.readEndpoint("address", required: true).map(Checker.Kind.tcp)
        case "ping":
            return reader.read("host", required: true, expected: HostName.expectation) { value in
                value.string.flatMap { HostName.isValid($0) || IPAddress.isIPv6($0) ? $0 : nil }
            }.map { Checker.Kind.ping(host: $0) }
        case "interface":
            return reader.read("interface", required: true, expected: "a network interface name such as \"eth0\"") {
                $0.string.flatMap { InterfaceName.isValid($0) ? $0 : nil }
            }.map(Checker.Kind.interface)
        default:
            return reader.readPath("path", required: true).map(Checker.Kind.script)
        }
    }
}
