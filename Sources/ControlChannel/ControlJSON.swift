import FoundationEssentials

/// The JSON of the control protocol: one compact line per message on the socket, and the
/// indented form `clusterctl --json` prints. Keys are sorted, so equal values give equal text.
public enum ControlJSON {
    /// `value` as one line of JSON (no newline inside: newlines in strings are escaped as `\n`).
    public static func line<T: Encodable>(_ value: T) throws -> String {
        try text(value, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// `value` as indented JSON, for people.
    public static func pretty<T: Encodable>(_ value: T) throws -> String {
        try text(value, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])
    }

    /// A `T` read from JSON `bytes`; a ``ControlProtocolError`` saying what is wrong otherwise.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw ControlProtocolError.malformed(explain(error))
        } catch {
            throw ControlProtocolError.malformed("not JSON")
        }
    }

    private static func text<T: Encodable>(_ value: T, options: JSONEncoder.OutputFormatting) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = options
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// One short sentence for a decoding failure: where, and what was expected.
    private static func explain(_ error: DecodingError) -> String {
        func place(_ path: [CodingKey]) -> String {
            guard !path.isEmpty else { return "the top level" }
            let text = path.reduce("") { text, key in
                if let index = key.intValue { return text + "[\(index)]" }
                return text.isEmpty ? key.stringValue : text + "." + key.stringValue
            }
            return "'\(text)'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)' in \(place(context.codingPath))"
        case .typeMismatch(let type, let context):
            return "\(place(context.codingPath)) is not \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(place(context.codingPath)) is null, expected \(typeName(type))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON" : "\(place(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "not a valid message"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type: return "an integer"
        case is [String: Any].Type: return "an object"
        default: return type is any Collection.Type ? "a list" : "an object"
        }
    }
}

/// A message on the control socket that does not follow the protocol.
public enum ControlProtocolError: Error, Equatable, CustomStringConvertible {
    /// Not JSON, or not the expected shape; with what is wrong.
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let reason): return "malformed JSON: \(reason)"
        }
    }
}
