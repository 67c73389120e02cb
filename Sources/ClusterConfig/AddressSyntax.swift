import Glibc

/// Syntax of IP address literals (no name resolution).
enum IPAddress {
    static func isIPv4(_ text: String) -> Bool {
        var storage = in_addr()
        return text.split(separator: ".", omittingEmptySubsequences: false).count == 4 && inet_pton(AF_INET, text, &storage) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var storage = in6_addr()
        return inet_pton(AF_INET6, text, &storage) == 1
    }
}

/// Linux network interface names: 1 to 15 bytes, no slash, colon or white space, not `.` or `..`.
enum InterfaceName {
    static func isValid(_ name: String) -> Bool {
        guard (1...15).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return !name.contains { $0 == "/" || $0 == ":" || $0.isWhitespace }
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
