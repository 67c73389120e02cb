/// Finds the accepted key an unknown key was probably meant to be.
enum KeySuggestion {
    /// The accepted key closest to `key`: differing only in case, `-` for `_` or a plural `s`, or else within
    /// two edits (three for keys of nine characters or more); nil when none is that close.
    static func closest(to key: String, among accepted: [String]) -> String? {
        let normalized = String(key.lowercased().map { $0 == "-" ? "_" : $0 })
        if let match = accepted.first(where: { $0 == normalized || $0 == normalized + "s" || $0 + "s" == normalized }) {
            return match
        }
        let best = accepted.min { editDistance(normalized, $0) < editDistance(normalized, $1) }
        guard let best, editDistance(normalized, best) <= max(2, normalized.count / 3) else { return nil }
        return best
    }

    /// Levenshtein distance between two strings, by characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let b = Array(b)
        var previous = Array(0...b.count)
        for (i, characterOfA) in a.enumerated() {
            var current = [i + 1]
            for (j, characterOfB) in b.enumerated() {
                let substitution = previous[j] + (characterOfA == characterOfB ? 0 : 1)
                current.append(min(previous[j + 1] + 1, current[j] + 1, substitution))
            }
            previous = current
        }
        return previous[b.count]
    }
}
