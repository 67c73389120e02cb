@testable import ClusterConfig
import XCTest

/// What a valid cluster file turns into.
final class LoadingTests: XCTestCase {
    func testTheCommentedExampleLoads() throws {
        let cluster = try ClusterConfiguration.load(path: ClusterFiles.examplePath)
        XCTAssertEqual(cluster.name, "demo")
        XCTAssertEqual(cluster.keyFile, "/etc/mirror/demo.key")
        XCTAssertEqual(cluster.witness?.address, Endpoint(host: "127.0.0.3", port: 7790))
        XCTAssertEqual(cluster.nodes.map(\.name), ["node1", "node2"])
        let node2 = try XCTUnwrap(cluster.node(named: "node2"))
        XCTAssertEqual(node2.heartbeatAddresses, [Endpoint(host: "127.0.0.2", port: 7789)], "default: replication port + 1")
        XCTAssertEqual(node2.localPath("/var/lib/postgresql/15/main"), "/var/lib/mirror-demo/node2/var/lib/postgresql/15/main")
        XCTAssertEqual(cluster.peer(of: node2)?.name, "node1")

        let module = try XCTUnwrap(cluster.modules.first)
        XCTAssertEqual(module.name, "AM")
        XCTAssertEqual(module.directories, ["/var/lib/postgresql/15/main"])
        XCTAssertEqual(module.virtualIPs, [VirtualIP(address: "10.77.0.100", prefixLength: 24, interface: "veth-am")])
        XCTAssertEqual(module.scripts, Scripts(start: "/etc/mirror/AM/start", stop: "/etc/mirror/AM/stop"))
        XCTAssertEqual(module.processMonitors, [ProcessMonitor(
            name: "postmaster", target: .pidFile("/var/lib/postgresql/15/main/postmaster.pid"),
            maxRestarts: 3, restartWindow: .seconds(60))])
        XCTAssertEqual(module.checkers.map(\.name), ["pg-port", "gateway", "vip-link", "pg-ready"])
        XCTAssertEqual(module.checkers.map(\.kind), [
            .tcp(Endpoint(host: "127.0.0.1", port: 5432)), .ping(host: "10.77.0.1"),
            .interface("veth-am"), .script("/etc/mirror/AM/pg-ready"),
        ])
        XCTAssertEqual(module.checkers[3].interval, .seconds(10))
        XCTAssertNil(module.checkers[2].timeout, "interface checkers have no timeout")
    }

    func testDefaultsApplyToAMinimalFile() throws {
        let cluster = try ClusterConfiguration.parse(ClusterFiles.text(), file: ClusterFiles.name)
        XCTAssertEqual(cluster.heartbeatInterval, .milliseconds(500))
        XCTAssertEqual(cluster.heartbeatTimeout, .seconds(3))
        XCTAssertEqual(cluster.ackTimeout, .seconds(3))
        XCTAssertEqual(cluster.regionSize, 1 << 20)
        XCTAssertNil(cluster.witness)
        XCTAssertNil(cluster.nodes[0].pathPrefix)
        XCTAssertEqual(cluster.nodes[0].localPath("/srv/am"), "/srv/am")
        XCTAssertEqual(cluster.modules[0].virtualIPs, [])
        XCTAssertNil(cluster.modules[0].scripts)
    }

    func testSettingsAcceptFractionsIPv6AndHostNames() throws {
        let nodes = """
            [[node]]
            name = "alpha.example.com"
            replication = ["[fd00::1]:7788", "alpha-repl.example.com:7788"]
            heartbeat = ["[fd00::1]:7000", "192.168.10.1:7000"]

            [[node]]
            name = "beta.example.com"
            replication = ["[fd00::2]:7788", "beta-repl.example.com:7788"]
            """
        let modules = """
            [[module]]
            name = "AM"
            directories = ["/srv/am"]
            [[module.vip]]
            address = "fd00::100/64"
            interface = "eth0"
            [[module.process]]
            name = "web"
            process_name = "nginx"
            max_restarts = 0
            restart_window = 30.5
            """
        let text = ClusterFiles.text(topLevel: "heartbeat_interval = 0.5\nheartbeat_timeout = 2\nregion_size = 65536",
                                     nodes: nodes, modules: modules)
        let cluster = try ClusterConfiguration.parse(text, file: ClusterFiles.name)
        XCTAssertEqual(cluster.heartbeatInterval, .milliseconds(500))
        XCTAssertEqual(cluster.regionSize, 65536)
        XCTAssertEqual(cluster.nodes[0].replicationAddresses.map(\.description), ["[fd00::1]:7788", "alpha-repl.example.com:7788"])
        XCTAssertEqual(cluster.nodes[1].heartbeatAddresses.map(\.description), ["[fd00::2]:7789", "beta-repl.example.com:7789"])
        XCTAssertEqual(cluster.modules[0].virtualIPs.first?.prefixLength, 64)
        XCTAssertEqual(cluster.modules[0].processMonitors.first?.target, .processName("nginx"))
        XCTAssertEqual(cluster.modules[0].processMonitors.first?.restartWindow, .milliseconds(30_500))
    }

    func testSummaryNamesNodesModulesAndTheirParts() throws {
        let summary = try ClusterConfiguration.load(path: ClusterFiles.examplePath).summary
        for expected in [
            "cluster \"demo\": 2 nodes, 1 module",
            "heartbeat every 1 s, peer lost after 5 s; ack timeout 3 s; region size 1 MiB; witness 127.0.0.3:7790",
            "node \"node1\": replication 127.0.0.1:7788; heartbeat 127.0.0.1:7789; path prefix /var/lib/mirror-demo/node1",
            "directories: /var/lib/postgresql/15/main",
            "virtual IPs: 10.77.0.100/24 on veth-am",
            "pg-port (tcp 127.0.0.1:5432, every 5 s)",
        ] {
            XCTAssertTrue(summary.contains(expected), "missing \(expected) in\n\(summary)")
        }
    }
}
