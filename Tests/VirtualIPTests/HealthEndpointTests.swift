import Foundation
import Glibc
import TestSupport
import VirtualIP
import XCTest

/// The health endpoint on loopback: the answers a load balancer relies on, and robustness.
final class HealthEndpointTests: XCTestCase {
    private var states: States!
    private var endpoint: HealthEndpoint!

    override func setUpWithError() throws {
        states = States(["AM": "PRIM", "BM": "ALONE", "CM": "SECOND", "DM": "WAIT", "EM": "STOP"])
        let lookup = states!
        endpoint = try HealthEndpoint(host: "127.0.0.1", port: 0,
                                      limits: .init(maximumRequestBytes: 4096, requestTimeout: 0.5, maximumConnections: 8),
                                      states: { lookup[$0] })
        endpoint.start()
    }

    override func tearDown() {
        endpoint?.stop()
        endpoint = nil
    }

    func testServingStatesAnswer200AndOthers503WithTheState() throws {
        let response = try exchange("GET /health/AM HTTP/1.1\r\nHost: 10.77.0.100:8080\r\nUser-Agent: lb\r\n\r\n")
        XCTAssertEqual(response.raw, """
            HTTP/1.1 200 OK\r
            Content-Type: text/plain; charset=utf-8\r
            Content-Length: 5\r
            Cache-Control: no-store\r
            X-Mirror-Module: AM\r
            X-Mirror-State: PRIM\r
            Connection: close\r
            \r
            PRIM

            """)
        XCTAssertEqual(try exchange(get("/health/BM")).statusAndBody, "200 ALONE")
        XCTAssertEqual(try exchange(get("/health/CM")).statusAndBody, "503 SECOND")
        XCTAssertEqual(try exchange(get("/health/DM")).statusAndBody, "503 WAIT")
        XCTAssertEqual(try exchange(get("/health/EM")).statusAndBody, "503 STOP")
        // The answer follows the state as it changes.
        states["AM"] = "SECOND"
        XCTAssertEqual(try exchange(get("/health/AM")).statusAndBody, "503 SECOND")
        states["CM"] = "PRIM"
        XCTAssertEqual(try exchange(get("/health/CM")).statusAndBody, "200 PRIM")
    }

    func testUnknownModulesAndPathsAre404() throws {
        for path in ["/health/XM", "/health/", "/health", "/", "/healthz", "/health/AM/extra", "/health/A%4D", "/health/..",
                     "/health/" + String(repeating: "A", count: 65)] {
            XCTAssertEqual(try exchange(get(path)).status, 404, path)
        }
        XCTAssertEqual(try exchange(get("/health/XM")).body, "unknown module\n")
    }

    func testRequestForms() throws {
        XCTAssertEqual(try exchange(get("/health/BM?from=haproxy")).statusAndBody, "200 ALONE", "query ignored")
        XCTAssertEqual(try exchange(get("http://10.77.0.100:8080/health/BM")).statusAndBody, "200 ALONE", "absolute form")
        XCTAssertEqual(try exchange("GET /health/AM HTTP/1.0\r\n\r\n").statusAndBody, "200 PRIM", "HTTP/1.0")
        XCTAssertEqual(try exchange("GET /health/AM HTTP/1.1\n\n").statusAndBody, "200 PRIM", "bare line feeds")
        let head = try exchange("HEAD /health/CM HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(head.status, 503)
        XCTAssertEqual(head.body, "", "no body for HEAD")
        XCTAssertTrue(head.raw.contains("Content-Length: 7\r\n"), head.raw)
        let post = try exchange("POST /health/AM HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        XCTAssertEqual(post.status, 405)
        XCTAssertTrue(post.raw.contains("Allow: GET, HEAD\r\n"), post.raw)
    }

    func testMalformedRequestsAre400() throws {
        let malformed = [
            "GARBAGE\r\n\r\n", "GET /health/AM\r\n\r\n", "GET  /health/AM HTTP/1.1\r\n\r\n", "GET health/AM HTTP/1.1\r\n\r\n",
            "GET /health/AM HTTP/1.1 extra\r\n\r\n", "GET /health/AM HTTX/1.1\r\n\r\n", "G(T /health/AM HTTP/1.1\r\n\r\n",
            "GET /health/AM HTTP/1.1\r\nNoColon\r\n\r\n", "GET /health/AM HTTP/1.1\r\n: empty name\r\n\r\n",
            "GET /health/AM HTTP/1.1\r\nBad Name: x\r\n\r\n", "GET /health/AM HTTP/1.1\r\nX: a\u{01}b\r\n\r\n",
            "GET /he\u{00}alth/AM HTTP/1.1\r\n\r\n", "GET /health/AM HTTP/1.1\r\n folded\r\n\r\n", "\r\n\r\n",
            "GET /health/AM HTTP/1.1\r\nHost: x\r\n",  // then EOF: never completed
        ]
        for request in malformed {
            XCTAssertEqual(try exchange(request).status, 400, request.debugDescription)
        }
        XCTAssertEqual(try exchange("GET /health/AM HTTP/2.0\r\n\r\n").status, 505)
        XCTAssertEqual(try exchange("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").status, 505, "an HTTP/2 preface")
    }

    func testOversizedHeadIs431() throws {
        let big = "GET /health/AM HTTP/1.1\r\nX-Fill: \(String(repeating: "x", count: 5000))\r\n\r\n"
        XCTAssertEqual(try exchange(big).status, 431)
        let endless = "GET /health/AM HTTP/1.1\r\nX-Fill: \(String(repeating: "y", count: 100_000))"
        XCTAssertEqual(try exchange(endless).status, 431, "answered without waiting for the end of an endless head")
        XCTAssertEqual(try exchange(get("/health/AM")).status, 200)
    }

    /// A client that connects and says nothing gets 408 after the request timeout, and never holds
    /// up the others; more idle clients than the connection limit only delay a request until the
    /// idle ones time out.
    func testSilentClientsDoNotBlockOthers() throws {
        let silent = try connectLoopback(port: endpoint.port)
        defer { close(silent) }
        let start = now()
        XCTAssertEqual(try exchange(get("/health/AM")).status, 200)
        XCTAssertLessThan(now() - start, 0.3, "served while another connection is silent")
        XCTAssertEqual(try readAll(silent, timeout: 3).status, 408)
        XCTAssertGreaterThanOrEqual(now() - start, 0.4)

        var idle: [Int32] = []
        defer { idle.forEach { close($0) } }
        for _ in 0..<12 { idle.append(try connectLoopback(port: endpoint.port)) }
        let floodStart = now()
        XCTAssertEqual(try exchange(get("/health/BM"), timeout: 5).status, 200)
        XCTAssertLessThan(now() - floodStart, 2.5, "served once the idle connections timed out")
    }

    /// Random bytes, with and without a blank line somewhere: every connection gets a well-formed
    /// answer or (nothing sent) a plain close, and the endpoint keeps answering.
    func testGarbageNeverBreaksTheEndpoint() throws {
        var generator = SeededGenerator(seed: 0x5EED_4EA1)
        for round in 0..<300 {
            var bytes = generator.bytes(generator.int(in: 0...600))
            if generator.chance(0.5) { bytes.insert(contentsOf: Array("\r\n\r\n".utf8), at: generator.int(in: 0...bytes.count)) }
            if generator.chance(0.3) { bytes = Array("GET /health/AM HTTP/1.1\r\n".utf8) + bytes }
            let response = try exchange(bytes, timeout: 3)
            if bytes.isEmpty {
                XCTAssertEqual(response.raw, "", "round \(round)")
            } else {
                XCTAssertTrue(response.raw.hasPrefix("HTTP/1.1 "), "round \(round): \(response.raw.debugDescription)")
                XCTAssertTrue(response.raw.contains("\r\nConnection: close\r\n\r\n"), "round \(round)")
            }
        }
        XCTAssertEqual(try exchange(get("/health/AM")).statusAndBody, "200 PRIM")
    }

    func testListenErrorsNameTheAddress() throws {
        XCTAssertThrowsError(try HealthEndpoint(host: "127.0.0.1", port: endpoint.port, states: { _ in nil })) { error in
            XCTAssertEqual("\(error)", "health endpoint on 127.0.0.1:\(endpoint.port): bind failed: Address already in use")
        }
        XCTAssertThrowsError(try HealthEndpoint(host: "localhost", port: 0, states: { _ in nil })) { error in
            XCTAssertTrue("\(error)".contains("an IP literal"), "\(error)")
        }
        let v6 = try HealthEndpoint(host: "::1", port: 0, states: { $0 == "AM" ? "ALONE" : nil })
        v6.start()
        defer { v6.stop() }
        XCTAssertEqual(try exchange(get("/health/AM"), port: v6.port, host: "::1").statusAndBody, "200 ALONE")
    }

    func testStopFreesThePort() throws {
        let port = endpoint.port
        endpoint.stop()
        XCTAssertThrowsError(try connectLoopback(port: port), "nothing listens after stop()")
        let again = try HealthEndpoint(host: "127.0.0.1", port: port, states: { _ in "PRIM" })
        again.start()
        defer { again.stop() }
        XCTAssertEqual(try exchange(get("/health/ZM"), port: port).status, 200)
    }

    // MARK: - Client side

    private func get(_ path: String) -> String { "GET \(path) HTTP/1.1\r\nHost: lb\r\n\r\n" }

    private func exchange(_ text: String, timeout: Double = 3, port: UInt16? = nil, host: String = "127.0.0.1") throws -> HTTPAnswer {
        try exchange(Array(text.utf8), timeout: timeout, port: port, host: host)
    }

    /// Sends `bytes`, closes the sending side, and reads the answer until the server closes.
    private func exchange(_ bytes: [UInt8], timeout: Double = 3, port: UInt16? = nil, host: String = "127.0.0.1") throws -> HTTPAnswer {
        let fd = try connectLoopback(port: port ?? endpoint.port, host: host)
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { break }  // the server answered and stopped reading: fine
            offset += sent
        }
        shutdown(fd, Int32(SHUT_WR))
        return try readAll(fd, timeout: timeout)
    }
}

/// A response as read off the wire.
struct HTTPAnswer {
    let raw: String

    var status: Int? {
        let parts = raw.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0] == "HTTP/1.1" else { return nil }
        return Int(parts[1])
    }

    var body: String {
        guard let range = raw.range(of: "\r\n\r\n") else { return "" }
        return String(raw[range.upperBound...])
    }

    var statusAndBody: String { "\(status.map(String.init) ?? "-") \(body.trimmingCharacters(in: .newlines))" }
}

/// Module states that a test changes while the endpoint reads them from its thread.
final class States: @unchecked Sendable {
    private var values: [String: String]
    private let lock = NSLock()

    init(_ values: [String: String]) { self.values = values }

    subscript(module: String) -> String? {
        get { lock.withLock { values[module] } }
        set { lock.withLock { values[module] = newValue } }
    }
}

/// A blocking TCP connection to `host:port` (IPv4 or IPv6 literal).
func connectLoopback(port: UInt16, host: String = "127.0.0.1") throws -> Int32 {
    let v6 = host.contains(":")
    let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    var result: Int32
    if v6 {
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        inet_pton(AF_INET6, host, &address.sin6_addr)
        result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    } else {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
    guard result == 0 else {
        let message = String(cString: strerror(errno))
        close(fd)
        throw TestFailure("connect [\(host)]:\(port): \(message)")
    }
    return fd
}

/// Everything the peer sends until it closes; throws after `timeout` seconds.
func readAll(_ fd: Int32, timeout: Double) throws -> HTTPAnswer {
    let deadline = now() + timeout
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let remaining = deadline - now()
        guard remaining > 0 else { throw TestFailure("no end of answer within \(timeout) s; got \(bytes.count) bytes") }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, Int32(max(1, remaining * 1000))) > 0 else { continue }
        let count = recv(fd, &chunk, chunk.count, 0)
        if count < 0 && errno == EINTR { continue }
        if count < 0 && errno == ECONNRESET { break }
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return HTTPAnswer(raw: String(decoding: bytes, as: UTF8.self))
}
