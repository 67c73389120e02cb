import ClusterConfig
import XCTest

/// Every refusal of the file itself names the file, the table and the key, and says what is expected.
final class RefusalTests: XCTestCase {
    func testMalformedTOMLIsRefusedWithItsLineAndColumn() {
        let text = ClusterFiles.text(topLevel: "ack_timeout = 3\nregion_size = = 4")
        let problems = ClusterFiles.problems(text)
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems[0].hasPrefix("cluster.toml: line 4, column "), problems[0])
        XCTAssertTrue(problems[0].contains("invalid TOML:"), problems[0])
    }

    func testMissingRequiredKeysAreNamed() {
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.twoNodes + "\n" + ClusterFiles.oneModule), [
            "cluster.toml: missing key \"cluster\": expected a name of 1 to 64 letters, digits, '_' and '-'",
            "cluster.toml: missing key \"key_file\": expected an absolute path",
        ])
    }

    func testAClusterHasExactlyTwoNodes() {
        let third = ClusterFiles.twoNodes + "\n[[node]]\nname = \"node3\"\nreplication = [\"127.0.0.3:7788\"]"
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(nodes: third)), [
            "cluster.toml: [[node]] 3: a cluster has exactly two nodes, found 3",
        ])
        let one = "[[node]]\nname = \"node1\"\nreplication = [\"127.0.0.1:7788\"]"
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(nodes: one)), [
            "cluster.toml: a cluster has exactly two nodes ([[node]] tables), found 1",
        ])
    }

    func testNodesNeedTheirOwnNamesAddressesAndPrefixes() {
        let nodes = """
            [[node]]
            name = "node1"
            replication = ["127.0.0.1:7788"]
            path_prefix = "/srv/n"

            [[node]]
            name = "node1"
            replication = ["127.0.0.1:7788"]
            path_prefix = "/srv/n"
            """
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(nodes: nodes)), [
            "cluster.toml: [[node]] 2: name \"node1\" is also the name of [[node]] 1: each node needs its own",
            "cluster.toml: node \"node1\": replication address 127.0.0.1:7788 is also one of node \"node1\"'s",
            "cluster.toml: node \"node1\": heartbeat address 127.0.0.1:7789 is also one of node \"node1\"'s",
            "cluster.toml: node \"node1\": path_prefix \"/srv/n\" is also node \"node1\"'s: the two copies would be one",
        ])
    }

    func testHeartbeatPathsPairUp() {
        let nodes = """
            [[node]]
            name = "node1"
            replication = ["127.0.0.1:7788"]
            heartbeat = ["127.0.0.1:7789", "10.0.0.1:7789"]

            [[node]]
            name = "node2"
            replication = ["127.0.0.2:7788"]
            """
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(nodes: nodes)), [
            "cluster.toml: node \"node2\": 1 heartbeat address, node \"node1\" has 2: heartbeat paths pair the nodes' addresses "
                + "by position (first with first...), give both nodes as many",
        ])
    }

    func testMalformedAddressesAreRefusedOneByOne() {
        let nodes = """
            [[node]]
            name = "node1"
            replication = ["127.0.0.1", "300.1.1.1:7788", "::1:7788", "127.0.0.1:0", "127.0.0.1:70000", "-bad-:1"]

            [[node]]
            name = "node2"
            replication = "127.0.0.2:7788"
            """
        let expected = "expected \"host:port\" (IPv4 address, host name or [IPv6] address, port 1-65535)"
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(nodes: nodes)), [
            "cluster.toml: node \"node1\": replication[0] = \"127.0.0.1\": \(expected)",
            "cluster.toml: node \"node1\": replication[1] = \"300.1.1.1:7788\": \(expected)",
            "cluster.toml: node \"node1\": replication[2] = \"::1:7788\": \(expected)",
            "cluster.toml: node \"node1\": replication[3] = \"127.0.0.1:0\": \(expected)",
            "cluster.toml: node \"node1\": replication[4] = \"127.0.0.1:70000\": \(expected)",
            "cluster.toml: node \"node1\": replication[5] = \"-bad-:1\": \(expected)",
            "cluster.toml: node \"node2\": replication = \"127.0.0.2:7788\": expected an array of \"host:port\" strings",
        ])
    }

    func testUnknownKeysAreRefusedWithASuggestionAndTheAcceptedKeys() {
        let modules = ClusterFiles.oneModule + "\ndirectory = \"/srv/other\""
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(topLevel: "heartbeat_intervall = 2\nfoo = 1", modules: modules)), [
            "cluster.toml: unknown key \"foo\"; accepted keys: cluster, key_file, state_dir, heartbeat_interval, heartbeat_timeout, "
                + "ack_timeout, region_size, witness, node, module",
            "cluster.toml: unknown key \"heartbeat_intervall\" (did you mean \"heartbeat_interval\"?); accepted keys: cluster, "
                + "key_file, state_dir, heartbeat_interval, heartbeat_timeout, ack_timeout, region_size, witness, node, module",
            "cluster.toml: module \"AM\": unknown key \"directory\" (did you mean \"directories\"?); accepted keys: name, "
                + "directories, start, stop, vip, process, checker",
        ])
    }

    func testHeartbeatTimeoutMustExceedTheInterval() {
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(topLevel: "heartbeat_interval = 2\nheartbeat_timeout = 2")), [
            "cluster.toml: heartbeat_timeout (2 s) must be greater than heartbeat_interval (2 s): several heartbeats "
                + "must be missed before the peer is declared lost",
        ])
    }

    func testDurationsAreSecondsWithinADay() {
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(topLevel: "ack_timeout = \"3s\"\nheartbeat_timeout = 0\nheartbeat_interval = 1e9")), [
            "cluster.toml: heartbeat_interval = 1000000000.0: expected a number of seconds greater than 0 and at most 86400",
            "cluster.toml: heartbeat_timeout = 0: expected a number of seconds greater than 0 and at most 86400",
            "cluster.toml: ack_timeout = \"3s\": expected a number of seconds greater than 0 and at most 86400",
        ])
    }

    func testRegionSizeIsAPowerOfTwo() {
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(topLevel: "region_size = 1_000_000")), [
            "cluster.toml: region_size = 1000000: expected a power of two from 4096 to 1073741824 bytes (1048576 is 1 MiB)",
        ])
    }

    func testDirectoriesAreAbsoluteAndNeverOverlap() {
        let modules = """
            [[module]]
            name = "AM"
            directories = ["/srv/am", "data", "/srv/am/sub", "/srv/./x", "/srv/x/", "/"]

            [[module]]
            name = "B"
            directories = ["/srv"]

            [[module]]
            name = "C"
            directories = []
            """
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(modules: modules)), [
            "cluster.toml: module \"AM\": directories[1] = \"data\" is not an absolute path",
            "cluster.toml: module \"AM\": directories[3] = \"/srv/./x\" contains a '.' or '..' component",
            "cluster.toml: module \"AM\": directories[4] = \"/srv/x/\" contains '//' or ends with '/'",
            "cluster.toml: module \"AM\": directories[5] = \"/\" is the root directory",
            "cluster.toml: module \"AM\": directories: \"/srv/am/sub\" overlaps \"/srv/am\": replicated directories cannot nest",
            "cluster.toml: module \"C\": directories = []: expected an array of absolute paths, at least one",
            "cluster.toml: module \"B\": directories: \"/srv\" overlaps \"/srv/am\" of module \"AM\": a directory is replicated by one module only",
            "cluster.toml: module \"B\": directories: \"/srv\" overlaps \"/srv/am/sub\" of module \"AM\": a directory is replicated by one module only",
        ])
    }

    func testModuleNamesAreUniqueAndWellFormed() {
        let modules = ClusterFiles.oneModule + "\n\n[[module]]\nname = \"AM\"\ndirectories = [\"/srv/am2\"]\n\n"
            + "[[module]]\nname = \"A M\"\ndirectories = [\"/srv/am3\"]"
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(modules: modules)), [
            "cluster.toml: [[module]] 3: name = \"A M\": expected a name of 1 to 64 letters, digits, '_' and '-'",
            "cluster.toml: [[module]] 2: name \"AM\" is also the name of [[module]] 1: module names are unique in a cluster",
        ])
    }

    func testAVirtualIPBelongsToOneModule() {
        let vip = "\n[[module.vip]]\naddress = \"10.0.0.10/24\"\ninterface = \"eth0\""
        let modules = ClusterFiles.oneModule + vip + "\n\n[[module]]\nname = \"B\"\ndirectories = [\"/srv/b\"]" + vip
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(modules: modules)), [
            "cluster.toml: module \"B\": virtual IP 10.0.0.10 is also one of module \"AM\"'s",
        ])
    }

    func testTablesMustBeWrittenAsTheyAreExpected() {
        let text = """
            cluster = "demo"
            key_file = "/etc/mirror/demo.key"
            [[witness]]
            address = "127.0.0.3:7790"
            [module]
            name = "AM"
            """
        XCTAssertProblems(ClusterFiles.problems(text), [
            "cluster.toml: witness = [{...}] is an array: write [witness], not [[witness]]",
            "cluster.toml: a cluster has exactly two nodes ([[node]] tables), found 0",
            "cluster.toml: module = {...} is a single table: write [[module]] (an array of tables), not [module]",
            "cluster.toml: no [[module]] table: a cluster needs at least one module",
        ])
    }

    func testScriptsVirtualIPsProcessesAndCheckersAreChecked() {
        let modules = """
            [[module]]
            name = "AM"
            directories = ["/srv/am"]
            start = "start.sh"
            [[module.vip]]
            address = "10.0.0.10/33"
            interface = "a/b"
            [[module.process]]
            name = "pg"
            process_name = "postgres"
            pid_file = "/run/pg.pid"
            [[module.process]]
            name = "web"
            max_restarts = -1
            [[module.checker]]
            name = "pg"
            type = "tcp"
            address = "127.0.0.1:5432"
            timeout = 10
            [[module.checker]]
            name = "link"
            type = "interface"
            interface = "eth0"
            timeout = 1
            [[module.checker]]
            name = "disk"
            type = "smart"
            """
        XCTAssertProblems(ClusterFiles.problems(ClusterFiles.text(modules: modules)), [
            "cluster.toml: module \"AM\": start = \"start.sh\" is not an absolute path",
            "cluster.toml: module \"AM\": give both start and stop scripts, or neither (found only start)",
            "cluster.toml: module \"AM\": [[module.vip]] 1: address = \"10.0.0.10/33\": expected \"ADDRESS/PREFIX\" such as \"192.168.1.50/24\"",
            "cluster.toml: module \"AM\": [[module.vip]] 1: interface = \"a/b\": expected a network interface name such as \"eth0\"",
            "cluster.toml: module \"AM\": process \"pg\": give process_name or pid_file, not both",
            "cluster.toml: module \"AM\": process \"web\": missing key \"process_name\" (the command name shown by ps -e) or \"pid_file\" (an absolute path)",
            "cluster.toml: module \"AM\": process \"web\": max_restarts = -1: expected an integer from 0 to 100",
            "cluster.toml: module \"AM\": checker \"pg\": timeout (10 s) must not exceed interval (5 s)",
            "cluster.toml: module \"AM\": checker \"link\": unknown key \"timeout\"; accepted keys: name, type, interval, interface",
            "cluster.toml: module \"AM\": checker \"disk\": type = \"smart\": expected one of \"tcp\", \"ping\", \"interface\", \"script\"",
            "cluster.toml: module \"AM\": duplicate checker name \"pg\": the names of [[module.process]] and [[module.checker]] tables must be unique in a module",
        ])
    }

    func testEveryProblemOfAFileIsReportedTogether() {
        let nodes = ClusterFiles.twoNodes + "\n[[node]]\nname = \"node3\"\nreplication = [\"nowhere\"]"
        let modules = """
            [[module]]
            name = "AM"
            directories = ["data"]
            [[module]]
            name = "AM"
            directories = ["/srv/am"]
            """
        let text = ClusterFiles.text(topLevel: "heartbeat_timeout = 0.5\nregion_size = 3000\ncolour = \"blue\"",
                                     nodes: nodes, modules: modules, keyFile: "demo.key")
        let problems = ClusterFiles.problems(text)
        XCTAssertEqual(problems.count, 8, problems.joined(separator: "\n"))
        for fragment in ["unknown key \"colour\"", "key_file = \"demo.key\" is not an absolute path",
                         "heartbeat_timeout (0.5 s) must be greater", "region_size = 3000", "found 3",
                         "node \"node3\": replication[0] = \"nowhere\"", "directories[0] = \"data\" is not an absolute path",
                         "[[module]] 2: name \"AM\" is also the name of [[module]] 1"] {
            XCTAssertEqual(problems.filter { $0.contains(fragment) }.count, 1, "\(fragment) in\n\(problems.joined(separator: "\n"))")
        }
        XCTAssertTrue(problems.allSatisfy { $0.hasPrefix("cluster.toml: ") })
    }

    func testAnUnreadableFileIsNamed() {
        XCTAssertThrowsError(try ClusterConfiguration.load(path: "/nonexistent/cluster.toml")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/cluster.toml: cannot read: No such file or directory")
        }
    }
}
