import TOMLKit

/// Readers for the kinds of values a cluster file holds.
extension TableReader {
    /// Longest accepted name of a cluster, node, module or checker.
    static let maximumNameLength = 64

    /// A name of letters, digits, `_` and `-` (and `.` when `allowDots`, for node names that are host names).
    func readName(_ key: String = "name", allowDots: Bool = false) -> String? {
        let characters = allowDots ? "letters, digits, '_', '-' and '.'" : "letters, digits, '_' and '-'"
        let expected = "a name of 1 to \(Self.maximumNameLength) \(characters)"
        return read(key, required: true, expected: expected) { value in
            guard let name = value.string, (1...Self.maximumNameLength).contains(name.count),
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || (allowDots && $0 == ".")) })
            else { return nil }
            return name
        }
    }

    /// A plain absolute path (see `AbsolutePath.problem`).
    func readPath(_ key: String, required: Bool) -> String? {
        read(key, required: required, expected: "an absolute path", Self.absolutePath)
    }

    /// A number of seconds, integer or fractional, more than 0 and at most a day; `fallback` when absent.
    func readSeconds(_ key: String, default fallback: Duration) -> Duration {
        read(key, required: false, expected: "a number of seconds greater than 0 and at most 86400") { value in
            guard let seconds = value.int.map(Double.init) ?? value.double,
                  seconds > 0, seconds <= 86_400 else { return nil }
            return .seconds(seconds)
        } ?? fallback
    }

    /// An integer within `range`; `fallback` when absent.
    func readInteger(_ key: String, in range: ClosedRange<Int>, default fallback: Int) -> Int {
        read(key, required: false, expected: "an integer from \(range.lowerBound) to \(range.upperBound)") { value in
            value.int.flatMap { range.contains($0) ? $0 : nil }
        } ?? fallback
    }

    /// A string holding `host:port`.
    func readEndpoint(_ key: String, required: Bool) -> Endpoint? {
        read(key, required: required, expected: Endpoint.expectation) { $0.string.flatMap(Endpoint.parse) }
    }

    /// An array of `host:port` strings, at least one.
    func readEndpoints(_ key: String, required: Bool) -> [Endpoint]? {
        readArray(key, required: required, expected: "an array of \"host:port\" strings",
                  element: Endpoint.expectation) { $0.string.flatMap(Endpoint.parse) }
    }

    /// Converts a string holding a plain absolute path, refusing it with the reason otherwise.
    static func absolutePath(_ value: TOMLValue) throws(Refusal) -> String? {
        guard let path = value.string else { return nil }
        if let problem = AbsolutePath.problem(path) { throw Refusal(reason: problem) }
        return path
    }
}
