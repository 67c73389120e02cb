/// One problem found in a cluster file, read as one line by the operator:
/// `FILE: line L, column C: message` for a TOML syntax error, `FILE: CONTEXT: message` otherwise,
/// where CONTEXT names the table (`module "AM"`, `[[node]] 3`, `[witness]`) and is empty at the top level.
public struct ConfigurationIssue: Error, Equatable, Sendable, CustomStringConvertible {
    /// Where in the file the problem is.
    public enum Location: Equatable, Sendable {
        /// A position given by the TOML parser (1-based).
        case position(line: Int, column: Int)
        /// A table, e.g. `module "AM"`; empty for the top level of the file.
        case table(String)
    }

    /// The cluster file, as the operator named it.
    public let file: String
    public let location: Location
    /// What is wrong and what is expected, naming the key.
    public let message: String

    public init(file: String, location: Location, message: String) {
        self.file = file
        self.location = location
        self.message = message
    }

    public var description: String {
        switch location {
        case .position(let line, let column):
            return "\(file): line \(line), column \(column): \(message)"
        case .table(let context) where context.isEmpty:
            return "\(file): \(message)"
        case .table(let context):
            return "\(file): \(context): \(message)"
        }
    }
}

/// Every problem found in a cluster file, in file order; thrown when there is at least one.
public struct ConfigurationErrors: Error, Equatable, Sendable, CustomStringConvertible {
    public let issues: [ConfigurationIssue]

    public init(_ issues: [ConfigurationIssue]) {
        self.issues = issues
    }

    /// One issue per line.
    public var description: String {
        issues.map(\.description).joined(separator: "\n")
    }
}

/// Collects the issues of one file while it is read, so that all of them are reported together.
final class IssueLog {
    let file: String
    private(set) var issues: [ConfigurationIssue] = []

    init(file: String) {
        self.file = file
    }

    func add(_ context: String, _ message: String) {
        issues.append(ConfigurationIssue(file: file, location: .table(context), message: message))
    }

    func addParseError(line: Int, column: Int, _ message: String) {
        issues.append(ConfigurationIssue(file: file, location: .position(line: line, column: column), message: message))
    }

    /// Throws every issue logged so far, if any.
    func throwIfAny() throws {
        if !issues.isEmpty { throw ConfigurationErrors(issues) }
    }
}
