/// The answer of the health endpoint to one request head, decided without any I/O.
struct HealthResponse: Equatable {
    var status: Int
    var body: String
    var headers: [(String, String)] = []
    /// False for HEAD: same status line and headers, no body.
    var includesBody = true

    static func == (lhs: HealthResponse, rhs: HealthResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body && lhs.includesBody == rhs.includesBody
            && lhs.headers.map { "\($0.0): \($0.1)" } == rhs.headers.map { "\($0.0): \($0.1)" }
    }

    static let reasons: [Int: String] = [
        200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
        431: "Request Header Fields Too Large", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
    ]

    static func error(_ status: Int, _ message: String) -> HealthResponse {
        HealthResponse(status: status, body: message + "\n")
    }

    /// The bytes on the wire; the connection is always closed after them.
    var bytes: [UInt8] {
        let bodyBytes = Array(body.utf8)
        var text = "HTTP/1.1 \(status) \(Self.reasons[status] ?? "Error")\r\n"
        text += "Content-Type: text/plain; charset=utf-8\r\n"
        text += "Content-Length: \(bodyBytes.count)\r\n"
        text += "Cache-Control: no-store\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Connection: close\r\n\r\n"
        return Array(text.utf8) + (includesBody ? bodyBytes : [])
    }
}

/// Parsing of a request head (request line and header lines, without the blank line) and the
/// decision: `GET /health/MODULE` is 200 where the module is PRIM or ALONE, 503 with its state
/// elsewhere, 404 for an unknown module or path, 405 for other methods, 400 for anything malformed.
enum HealthRequest {
    /// The states in which a module serves, and a load balancer should send it traffic.
    static let servingStates: Set<String> = ["PRIM", "ALONE"]

    static func respond(toHead head: ArraySlice<UInt8>, states: (String) -> String?) -> HealthResponse {
        // Lines end with CRLF, or a bare LF from lenient clients; any other control byte is malformed.
        var lines: [String] = []
        var current: [UInt8] = []
        for byte in head {
            switch byte {
            case 0x0a:
                if current.last == 0x0d { current.removeLast() }
                lines.append(String(decoding: current, as: UTF8.self))
                current = []
            case 0x0d, 0x09, 0x20...0x7e, 0x80...0xff:
                current.append(byte)
            default:
                return .error(400, "malformed request: control character in the request")
            }
        }
        if !current.isEmpty {
            if current.last == 0x0d { current.removeLast() }
            lines.append(String(decoding: current, as: UTF8.self))
        }
        guard let requestLine = lines.first, !requestLine.isEmpty else { return .error(400, "malformed request: no request line") }
        guard requestLine.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f || $0 == 0x20 }) else {
            return .error(400, "malformed request line")
        }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else {
            return .error(400, "malformed request line: expected METHOD TARGET HTTP/1.1")
        }
        let method = String(parts[0]), target = String(parts[1]), version = String(parts[2])
        guard method.utf8.allSatisfy(isTokenByte) else { return .error(400, "malformed request line: bad method") }
        guard version.hasPrefix("HTTP/"), version.count == 8 else { return .error(400, "malformed request line: bad HTTP version") }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { return .error(505, "only HTTP/1.0 and HTTP/1.1 are spoken here") }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                  line[..<colon].utf8.allSatisfy(isTokenByte) else {
                return .error(400, "malformed header line")
            }
        }
        guard let path = originPath(target) else { return .error(400, "malformed request target") }
        guard method == "GET" || method == "HEAD" else {
            var response = HealthResponse.error(405, "only GET and HEAD are allowed")
            response.headers.append(("Allow", "GET, HEAD"))
            return response
        }
        var response = decide(path: path, states: states)
        response.includesBody = method != "HEAD"
        return response
    }

    private static func decide(path: Substring, states: (String) -> String?) -> HealthResponse {
        let prefix = "/health/"
        guard path.hasPrefix(prefix) else { return .error(404, "no such path; try /health/MODULE") }
        let name = String(path.dropFirst(prefix.count))
        guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy(isNameByte), let state = states(name) else {
            return .error(404, "unknown module")
        }
        let shown = String(state.utf8.filter { $0 > 0x20 && $0 < 0x7f }.prefix(32).map { Character(UnicodeScalar($0)) })
        var response = HealthResponse(status: servingStates.contains(shown) ? 200 : 503, body: shown + "\n")
        response.headers.append(("X-Mirror-Module", name))
        response.headers.append(("X-Mirror-State", shown))
        return response
    }

    /// The path of an origin-form target (`/health/AM?x=1`) or absolute-form one
    /// (`http://host:port/health/AM`), without its query; nil when neither.
    private static func originPath(_ target: String) -> Substring? {
        var rest = Substring(target)
        for scheme in ["http://", "https://"] where rest.lowercased().hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
            guard let slash = rest.firstIndex(of: "/") else { return "/" }
            rest = rest[slash...]
        }
        guard rest.hasPrefix("/") else { return nil }
        if let end = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<end] }
        return rest
    }

    /// RFC 9110 tchar.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a: return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Module names: letters, digits, `_`, `-` and `.`.
    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a, 0x5f, 0x2d, 0x2e: return true
        default: return false
        }
    }
}
