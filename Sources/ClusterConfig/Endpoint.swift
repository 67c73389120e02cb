/// A `host:port` network address; `host` is an IPv4 address, a host name, or an IPv6 address in brackets
/// (`[::1]:7788`). Only the syntax is checked: names are resolved when used.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// The host without brackets.
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// What `parse` accepts, for messages.
    static let expectation = "\"host:port\" (IPv4 address, host name or [IPv6] address, port 1-65535)"

    /// Parses `host:port`; nil when malformed.
    static func parse(_ text: String) -> Endpoint? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let portText = text[text.index(after: colon)...]
        guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit),
              let port = UInt16(portText), port > 0 else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            return IPAddress.isIPv6(host) ? Endpoint(host: host, port: port) : nil
        }
        return HostName.isValid(host) ? Endpoint(host: host, port: port) : nil
    }
}

/// Host names and IPv4 literals (RFC 1123); a name made only of digits and dots must be a valid IPv4 address.
enum HostName {
    static let expectation = "an IPv4 address, a host name or an IPv6 address"

    static func isValid(_ host: String) -> Bool {
        if IPAddress.isIPv4(host) { return true }
        guard (1...253).contains(host.utf8.count) else { return false }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if labels.allSatisfy({ $0.allSatisfy { $0.isASCIIDigit } }) { return false }
        return labels.allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}
