import TOMLKit

/// A value that is present but refused, with the reason said after it (`= "data" is not an absolute path`).
struct Refusal: Error {
    let reason: String
}

/// Reads the keys of one TOML table into typed values. Every missing key, malformed value and unknown key is
/// logged with the table's context and read as nil (or left out of an array), so one pass checks the whole file.
struct TableReader {
    let table: TOMLTable
    /// Names the table in messages, e.g. `module "AM"`; empty at the top level.
    var context: String
    let log: IssueLog

    /// Logs a problem of this table.
    func report(_ message: String) {
        log.add(context, message)
    }

    /// Logs every key that is not in `accepted`, with the closest accepted key and the full list.
    func refuseUnknownKeys(accepted: [String]) {
        for key in table.keys where !accepted.contains(key) {
            var message = "unknown key \"\(key)\""
            if let suggestion = KeySuggestion.closest(to: key, among: accepted) {
                message += " (did you mean \"\(suggestion)\"?)"
            }
            report(message + "; accepted keys: " + accepted.joined(separator: ", "))
        }
    }

    /// Whether the table has `key`.
    func has(_ key: String) -> Bool {
        table.contains(key: key)
    }

    /// Reads `key` through `convert`, which returns nil for a value that is not `expected` or throws a `Refusal`
    /// with a more precise reason. A missing key is logged only when `required`.
    func read<T>(_ key: String, required: Bool, expected: String, _ convert: (TOMLValue) throws(Refusal) -> T?) -> T? {
        guard let value = table[key]?.tomlValue else {
            if required { report("missing key \"\(key)\": expected \(expected)") }
            return nil
        }
        return convertOrReport(value, as: key, expected: expected, convert)
    }

    /// Reads an array under `key`, converting each element; an empty array is refused.
    /// - Returns: the elements that converted, or nil when the key is missing or not an array.
    func readArray<T>(
        _ key: String, required: Bool, expected: String, element elementExpected: String,
        _ convert: (TOMLValue) throws(Refusal) -> T?
    ) -> [T]? {
        guard let array = read(key, required: required, expected: expected, { $0.array }) else { return nil }
        if array.isEmpty {
            report("\(key) = []: expected \(expected), at least one")
        }
        return array.enumerated().compactMap { index, element in
            convertOrReport(element.tomlValue, as: "\(key)[\(index)]", expected: elementExpected, convert)
        }
    }

    /// Reads an array of tables (`[[key]]` in the file).
    func readTables(_ key: String) -> [TOMLTable] {
        read(key, required: false, expected: "tables written [[\(key)]]") { (value) throws(Refusal) -> [TOMLTable]? in
            guard let array = value.array else {
                throw Refusal(reason: value.type == .table
                    ? "is a single table: write [[\(key)]] (an array of tables), not [\(key)]"
                    : "is not a table: expected tables written [[\(key)]]")
            }
            let tables = array.compactMap { $0.tomlValue.table }
            return tables.count == array.count ? tables : nil
        } ?? []
    }

    /// Reads a single table (`[key]` in the file).
    func readTable(_ key: String) -> TOMLTable? {
        read(key, required: false, expected: "a table written [\(key)]") { (value) throws(Refusal) -> TOMLTable? in
            if value.type == .array { throw Refusal(reason: "is an array: write [\(key)], not [[\(key)]]") }
            return value.table
        }
    }

    private func convertOrReport<T>(
        _ value: TOMLValue, as keyPath: String, expected: String, _ convert: (TOMLValue) throws(Refusal) -> T?
    ) -> T? {
        do {
            if let converted = try convert(value) { return converted }
            report("\(keyPath) = \(TOMLLiteral.describe(value)): expected \(expected)")
        } catch {
            report("\(keyPath) = \(TOMLLiteral.describe(value)) \(error.reason)")
        }
        return nil
    }
}
