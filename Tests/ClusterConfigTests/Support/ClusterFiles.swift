import ClusterConfig
import Foundation
import XCTest

/// Cluster files for the tests, built from a valid minimal one.
enum ClusterFiles {
    /// The file name the tests give to `ClusterConfiguration.parse`.
    static let name = "cluster.toml"

    static let twoNodes = """
        [[node]]
        name = "node1"
        replication = ["127.0.0.1:7788"]

        [[node]]
        name = "node2"
        replication = ["127.0.0.2:7788"]
        """

    static let oneModule = """
        [[module]]
        name = "AM"
        directories = ["/srv/am"]
        """

    /// A valid file, with `topLevel` lines added before the tables and `nodes` or `modules` replaced when given.
    static func text(topLevel: String = "", nodes: String = twoNodes, modules: String = oneModule,
                     keyFile: String = "/etc/mirror/demo.key") -> String {
        """
        cluster = "demo"
        key_file = "\(keyFile)"
        \(topLevel)

        \(nodes)

        \(modules)
        """
    }

    /// The repository's commented example.
    static let examplePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/cluster.example.toml").path

    /// The problems `text` is refused with, one line each; fails the test when it is accepted.
    static func problems(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        do {
            _ = try ClusterConfiguration.parse(text, file: name)
            XCTFail("the file was accepted", file: file, line: line)
            return []
        } catch let errors as ConfigurationErrors {
            return errors.issues.map(\.description)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return []
        }
    }
}

/// Asserts that `problems` holds exactly `expected`, showing both lists otherwise.
func XCTAssertProblems(_ problems: [String], _ expected: [String], file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(problems, expected, "\n" + problems.joined(separator: "\n"), file: file, line: line)
}
