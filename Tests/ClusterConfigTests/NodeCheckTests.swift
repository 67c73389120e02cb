import ClusterConfig
import Glibc
import XCTest

/// What only a node can check: who it is, the key file, the scripts and its copy of the directories.
final class NodeCheckTests: XCTestCase {
    private var fixture: NodeFixture!
    private var cluster: ClusterConfiguration!

    override func setUpWithError() throws {
        try requireRoot()
        fixture = try NodeFixture()
        cluster = try ClusterConfiguration.load(path: fixture.clusterFile)
    }

    override func tearDown() {
        fixture = nil  // XCTest keeps test case instances: free the scratch directory now
    }

    private func problems(node: String) -> [String] {
        do {
            try cluster.checkNode(named: node)
            return []
        } catch {
            return (error as? ConfigurationErrors)?.issues.map(\.description) ?? ["\(error)"]
        }
    }

    func testANodeWithEverythingInPlacePasses() throws {
        XCTAssertProblems(problems(node: "node1"), [])
        let key = try PresharedKey.read(fixture.keyFile).get()
        XCTAssertEqual(key, Array(repeating: UInt8(ascii: "k"), count: 64), "the trailing newline is not part of the key")
    }

    func testAnUnknownNodeIsRefusedWithTheNodesList() {
        XCTAssertProblems(problems(node: "node3"), [
            "\(fixture.clusterFile): \"node3\" is not a node of this cluster; its nodes are \"node1\", \"node2\"",
        ])
    }

    func testAKeyFileReadableByOthersIsRefusedWithTheFix() {
        chmod(fixture.keyFile, 0o644)
        XCTAssertProblems(problems(node: "node1"), [
            "\(fixture.clusterFile): key_file \"\(fixture.keyFile)\" has mode 0644, which lets others than root read or "
                + "change the key: run chmod 600 \(fixture.keyFile)",
        ])
        chmod(fixture.keyFile, 0o400)  // stricter than 0600: accepted
        XCTAssertProblems(problems(node: "node1"), [])
    }

    func testAMissingKeyFileIsRefusedWithHowToMakeOne() throws {
        try FileManager.default.removeItem(atPath: fixture.keyFile)
        XCTAssertProblems(problems(node: "node1"), [
            "\(fixture.clusterFile): key_file \"\(fixture.keyFile)\" does not exist (create it with: "
                + "openssl rand -hex 32 > \(fixture.keyFile) && chmod 600 \(fixture.keyFile))",
        ])
    }

    func testAShortKeyIsRefused() throws {
        try fixture.scratch.write("demo.key", String(repeating: "k", count: 31) + "\n")
        XCTAssertProblems(problems(node: "node1"), [
            "\(fixture.clusterFile): key_file \"\(fixture.keyFile)\" holds a key of 31 bytes, at least 32 are needed "
                + "(make one with: openssl rand -hex 32 > \(fixture.keyFile))",
        ])
    }

    func testAKeyFileNotOwnedByRootIsRefused() {
        chown(fixture.keyFile, 65534, 65534)
        XCTAssertProblems(problems(node: "node1"), [
            "\(fixture.clusterFile): key_file \"\(fixture.keyFile)\" is owned by uid 65534, not root: run chown root: \(fixture.keyFile)",
        ])
    }

    func testScriptsAndTheNodesDirectoriesAreCheckedTogether() {
        chmod(fixture.startScript, 0o644)
        unlink(fixture.stopScript)
        let node2Copy = "\(fixture.scratch.path)/node2/srv/am"
        XCTAssertProblems(problems(node: "node2"), [
            "\(fixture.clusterFile): module \"AM\": directories[0] = \"/srv/am\" (\(node2Copy) on node \"node2\"): No such file or directory",
            "\(fixture.clusterFile): module \"AM\": start = \"\(fixture.startScript)\" is not executable: run chmod +x \(fixture.startScript)",
            "\(fixture.clusterFile): module \"AM\": stop = \"\(fixture.stopScript)\": No such file or directory",
        ])
    }

    func testACheckerScriptMustBeExecutable() {
        chmod(fixture.checkScript, 0o600)
        XCTAssertProblems(problems(node: "node1"), [
            "\(fixture.clusterFile): module \"AM\": checker \"ready\": path = \"\(fixture.checkScript)\" is not executable: "
                + "run chmod +x \(fixture.checkScript)",
        ])
    }
}
