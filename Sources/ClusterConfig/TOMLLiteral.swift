import TOMLKit

/// Writes a TOML value back the way the operator typed it, to quote it in messages.
enum TOMLLiteral {
    static func describe(_ value: TOMLValueConvertible) -> String {
        let value = value.tomlValue
        switch value.type {
        case .string:
            let escaped = (value.string ?? "").replacingBackslashesAndQuotes()
            return "\"\(escaped)\""
        case .array:
            return "[" + (value.array ?? []).map { describe($0) }.joined(separator: ", ") + "]"
        case .table:
            return "{...}"
        case .int, .double, .bool, .date, .time, .dateTime:
            return value.debugDescription
        }
    }
}

private extension String {
    func replacingBackslashesAndQuotes() -> String {
        var escaped = ""
        for character in self {
            if character == "\\" || character == "\"" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
