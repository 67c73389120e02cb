import Glibc
import XCTest
import TestSupport

/// `mirror check-config`, run as the operator runs it.
final class CheckConfigCommandTests: XCTestCase {
    func testTheExamplePassesWithASummary() throws {
        let result = try runMirror(["check-config", "--config", ClusterFiles.examplePath])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(result.standardError, "")
        XCTAssertTrue(result.standardOutput.hasPrefix("cluster \"demo\": 2 nodes, 1 module"), result.standardOutput)
        XCTAssertTrue(result.standardOutput.contains("module \"AM\":"), result.standardOutput)
        XCTAssertTrue(result.standardOutput.contains("virtual IPs: 10.77.0.100/24 on veth-am"), result.standardOutput)
    }

    func testABrokenFileFailsWithEveryProblemOnItsOwnLine() throws {
        let scratch = try ScratchDirectory()
        let text = ClusterFiles.text(topLevel: "heartbeat_timeout = 0.5\nregion_size = 3000", keyFile: "demo.key")
        let file = try scratch.write("cluster.toml", text)
        let result = try runMirror(["check-config", "--config", file])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.standardOutput, "")
        XCTAssertEqual(result.errorLines, [
            "\(file): key_file = \"demo.key\" is not an absolute path",
            "\(file): heartbeat_timeout (0.5 s) must be greater than heartbeat_interval (0.5 s): several heartbeats must "
                + "be missed before the peer is declared lost",
            "\(file): region_size = 3000: expected a power of two from 4096 to 1073741824 bytes (1048576 is 1 MiB)",
        ])
    }

    func testNodeChecksRunWithNode() throws {
        try requireRoot()
        let fixture = try NodeFixture()
        let passing = try runMirror(["check-config", "--config", fixture.clusterFile, "--node", "node1"])
        XCTAssertEqual(passing.status, 0, passing.standardError)
        XCTAssertTrue(passing.standardOutput.hasSuffix("node \"node1\": key file, scripts and directories checked\n"),
                      passing.standardOutput)

        chmod(fixture.keyFile, 0o644)
        let failing = try runMirror(["check-config", "--config", fixture.clusterFile, "--node", "node2"])
        XCTAssertEqual(failing.status, 1)
        XCTAssertEqual(failing.errorLines.count, 2, failing.standardError)
        XCTAssertTrue(failing.errorLines[0].contains("run chmod 600 \(fixture.keyFile)"), failing.standardError)
        XCTAssertTrue(failing.errorLines[1].contains("on node \"node2\"): No such file or directory"), failing.standardError)
    }
}
