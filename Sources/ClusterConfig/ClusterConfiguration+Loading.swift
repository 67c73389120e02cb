import TOMLKit

extension ClusterConfiguration {
    /// Reads and validates the cluster file at `path`, which names the file in messages as given.
    /// Nothing but this file is read: what depends on the node is checked by `checkNode(named:)`.
    /// - Throws: `ConfigurationErrors` with every problem found.
    public static func load(path: String) throws -> ClusterConfiguration {
        let bytes: [UInt8]
        do {
            bytes = try LocalFile.read(path)
        } catch {
            throw ConfigurationErrors([ConfigurationIssue(file: path, location: .table(""), message: "cannot read: \(error)")])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationErrors([ConfigurationIssue(file: path, location: .table(""), message: "is not UTF-8 text")])
        }
        return try parse(text, file: path)
    }

    /// Validates the text of a cluster file; `file` names it in messages.
    /// - Throws: `ConfigurationErrors` with every problem found.
    public static func parse(_ text: String, file: String) throws -> ClusterConfiguration {
        let log = IssueLog(file: file)
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            log.addParseError(line: error.source.begin.line, column: error.source.begin.column, "invalid TOML: \(error.description)")
            throw ConfigurationErrors(log.issues)
        }
        let configuration = ClusterDecoder.decode(root, file: file, log: log)
        guard let configuration, log.issues.isEmpty else { throw ConfigurationErrors(log.issues) }
        return configuration
    }
}
