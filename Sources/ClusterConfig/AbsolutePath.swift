/// Rules for the paths of a cluster file.
enum AbsolutePath {
    /// Why `path` is not a plain absolute path, or nil when it is one: starting with `/`, without `.` or `..`
    /// components, empty components or a trailing slash (so that two spellings never name one directory).
    static func problem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "is not an absolute path" }
        guard path != "/" else { return "is the root directory" }
        let components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        if components.contains(where: { $0 == "." || $0 == ".." }) { return "contains a '.' or '..' component" }
        if components.contains(where: \.isEmpty) { return "contains '//' or ends with '/'" }
        if path.contains("\0") { return "contains a NUL character" }
        return nil
    }

    /// Whether one path is the other or lies inside it (both plain absolute paths).
    static func overlap(_ first: String, _ second: String) -> Bool {
        first == second || first.hasPrefix(second + "/") || second.hasPrefix(first + "/")
    }
}
