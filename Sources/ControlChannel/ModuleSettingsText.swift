/// The text of a module's operator settings file (`settings` in the module's state directory):
/// the toggles `clusterctl boot`, `errd` and `checker` change, which outlive a daemon restart.
///
///     # mirror module settings: written by the daemon, changed with clusterctl boot/errd/checker
///     boot=off
///     errd=enabled
///     disabled_checker=pg-port
///     disabled_checker=disk-space
///
/// `boot` and `errd` are always written, and a file without them is damaged. One
/// `disabled_checker` line per disabled checker. Blank lines and lines starting with `#` are ignored.
public enum ModuleSettingsText {
    /// The settings themselves; a module without a settings file has the defaults.
    public struct Values: Equatable, Sendable {
        /// Start the module when the daemon starts (default on).
        public var boot: Bool
        /// Monitor the module's processes (default on).
        public var errdEnabled: Bool
        /// Checkers the operator disabled (default none).
        public var disabledCheckers: Set<String>

        public init(boot: Bool = true, errdEnabled: Bool = true, disabledCheckers: Set<String> = []) {
            self.boot = boot
            self.errdEnabled = errdEnabled
            self.disabledCheckers = disabledCheckers
        }
    }

    /// The values `text` holds.
    /// - Throws: ``ModuleSettingsTextError`` naming the first line that is wrong.
    public static func parse(_ text: String) throws -> Values {
        var values = Values()
        var seen: Set<String> = []
        for (index, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let number = index + 1
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ModuleSettingsTextError(line: number, problem: "not key=value")
            }
            let key = String(line[..<equals]).trimmingWhitespace()
            let value = String(line[line.index(after: equals)...]).trimmingWhitespace()
            func flag(_ on: String, _ off: String) throws -> Bool {
                guard seen.insert(key).inserted else { throw ModuleSettingsTextError(line: number, problem: "\(key) given twice") }
                switch value {
                case on: return true
                case off: return false
                default: throw ModuleSettingsTextError(line: number, problem: "\(key) is '\(value)', expected \(on) or \(off)")
                }
            }
            switch key {
            case "boot": values.boot = try flag("on", "off")
            case "errd": values.errdEnabled = try flag("enabled", "disabled")
            case "disabled_checker":
                guard !value.isEmpty else { throw ModuleSettingsTextError(line: number, problem: "disabled_checker without a name") }
                values.disabledCheckers.insert(value)
            default:
                throw ModuleSettingsTextError(line: number, problem: "unknown key '\(key)'")
            }
        }
        for key in ["boot", "errd"] where !seen.contains(key) {
            throw ModuleSettingsTextError(line: nil, problem: "no \(key)= line")
        }
        return values
    }

    /// The file's text for `values` (disabled checkers sorted), ending with a newline.
    /// Checker names are written as they are: they must not contain a newline.
    public static func format(_ values: Values) -> String {
        var lines = [
            "# mirror module settings: written by the daemon, changed with clusterctl boot/errd/checker",
            "boot=\(values.boot ? "on" : "off")",
            "errd=\(values.errdEnabled ? "enabled" : "disabled")",
        ]
        lines += values.disabledCheckers.sorted().map { "disabled_checker=\($0)" }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A settings file's text that ``ModuleSettingsText/parse(_:)`` cannot read.
public struct ModuleSettingsTextError: Error, Equatable, CustomStringConvertible {
    /// The line, from 1; nil when the problem is something missing.
    public let line: Int?
    /// What is wrong.
    public let problem: String

    public var description: String { line.map { "line \($0): \(problem)" } ?? problem }
}

extension StringProtocol {
    /// Without the spaces and tabs at both ends.
    fileprivate func trimmingWhitespace() -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(self[first...last])
    }
}
