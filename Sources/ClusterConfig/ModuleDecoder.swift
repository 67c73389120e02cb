import TOMLKit

/// Reads the `[[module]]` tables and the tables nested in them.
enum ModuleDecoder {
    static let acceptedKeys = ["name", "directories", "start", "stop", "vip", "process", "checker"]

    /// The modules whose name is valid; every problem is logged.
    static func decode(_ tables: [TOMLTable], log: IssueLog) -> [Decoded<Module>] {
        if tables.isEmpty { log.add("", "no [[module]] table: a cluster needs at least one module") }
        return tables.enumerated().compactMap { index, table in
            decodeModule(table, ordinal: index + 1, log: log)
        }
    }

    private static func decodeModule(_ table: TOMLTable, ordinal: Int, log: IssueLog) -> Decoded<Module>? {
        let position = "[[module]] \(ordinal)"
        var reader = TableReader(table: table, context: position, log: log)
        let name = reader.readName()
        if let name { reader.context = "module \"\(name)\"" }
        reader.refuseUnknownKeys(accepted: acceptedKeys)
        let directories = reader.readArray(
            "directories", required: true, expected: "an array of absolute paths",
            element: "an absolute path", TableReader.absolutePath
        ) ?? []
        for (index, directory) in directories.enumerated() {
            for other in directories[..<index] where AbsolutePath.overlap(directory, other) {
                reader.report("directories: \"\(directory)\" overlaps \"\(other)\": replicated directories cannot nest")
            }
        }
        let scripts = readScripts(reader)
        let virtualIPs = reader.readTables("vip").enumerated().compactMap { index, table in
            decodeVirtualIP(table, context: "\(reader.context): [[module.vip]] \(index + 1)", log: log)
        }
        let monitorTables = reader.readTables("process"), checkerTables = reader.readTables("checker")
        let monitors = monitorTables.enumerated().compactMap { index, table in
            CheckerDecoder.decodeProcessMonitor(table, moduleContext: reader.context, ordinal: index + 1, log: log)
        }
        let checkers = checkerTables.enumerated().compactMap { index, table in
            CheckerDecoder.decodeChecker(table, moduleContext: reader.context, ordinal: index + 1, log: log)
        }
        refuseDuplicateCheckerNames((monitorTables + checkerTables).compactMap { $0["name"]?.string }, reader)
        guard let name else { return nil }
        let module = Module(
            name: name, directories: directories, virtualIPs: virtualIPs, scripts: scripts,
            processMonitors: monitors, checkers: checkers
        )
        return Decoded(value: module, context: reader.context, position: position)
    }

    /// Both scripts or neither: an application started but never stopped would keep running after a failover.
    private static func readScripts(_ reader: TableReader) -> Scripts? {
        let start = reader.readPath("start", required: false)
        let stop = reader.readPath("stop", required: false)
        if reader.has("start") != reader.has("stop") {
            reader.report("give both start and stop scripts, or neither (found only \(reader.has("start") ? "start" : "stop"))")
        }
        guard let start, let stop else { return nil }
        return Scripts(start: start, stop: stop)
    }

    private static func decodeVirtualIP(_ table: TOMLTable, context: String, log: IssueLog) -> VirtualIP? {
        let reader = TableReader(table: table, context: context, log: log)
        reader.refuseUnknownKeys(accepted: ["address", "interface"])
        let cidr = reader.read("address", required: true, expected: "\"ADDRESS/PREFIX\" such as \"192.168.1.50/24\"") {
            $0.string.flatMap(VirtualIP.parseCIDR)
        }
        let interface = reader.read("interface", required: true, expected: "a network interface name such as \"eth0\"") {
            $0.string.flatMap { InterfaceName.isValid($0) ? $0 : nil }
        }
        guard let cidr, let interface else { return nil }
        return VirtualIP(address: cidr.address, prefixLength: cidr.prefixLength, interface: interface)
    }

    private static func refuseDuplicateCheckerNames(_ names: [String], _ reader: TableReader) {
        var seen: Set<String> = []
        for name in names where !seen.insert(name).inserted {
            reader.report("duplicate checker name \"\(name)\": the names of [[module.process]] and [[module.checker]] "
                + "tables must be unique in a module")
        }
    }
}
