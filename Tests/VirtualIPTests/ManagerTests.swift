import Glibc
import VirtualIP
import TestSupport
import XCTest

/// VirtualIPManager on one host of the lab: idempotence, refusals, and the messages they give.
final class ManagerTests: XCTestCase {
    func testAddAndRemoveAreIdempotent() throws {
        try requireRoot()
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let vip = try VirtualAddress(cidr: "10.77.0.100/24", interface: "veth-am")
        let manager = VirtualIPManager(options: .init(announcements: 1))

        try lab.run(in: .node1) {
            XCTAssertFalse(try manager.isPresent(vip))
            XCTAssertEqual(try manager.add(vip), .added)
            XCTAssertEqual(try manager.add(vip), .alreadyPresent)
            XCTAssertTrue(try manager.isPresent(vip))
            XCTAssertEqual(try manager.addresses(on: "veth-am").map(\.description),
                           ["10.77.0.1/24 on veth-am", "10.77.0.100/24 on veth-am"])
        }
        XCTAssertEqual(try lab.addresses(on: .node1), ["10.77.0.1/24", "10.77.0.100/24"], "added once")
        try lab.run(in: .node1) {
            XCTAssertEqual(try manager.remove(vip), .removed)
            XCTAssertEqual(try manager.remove(vip), .wasAbsent)
            XCTAssertFalse(try manager.isPresent(vip))
        }
        XCTAssertEqual(try lab.addresses(on: .node1), ["10.77.0.1/24"], "the node's own address untouched")

        // Removing with another prefix leaves someone else's entry alone.
        try mustRun(["ip", "-n", lab.namespace(.node1), "addr", "add", "10.77.0.100/16", "dev", "veth-am"])
        XCTAssertEqual(try lab.run(in: .node1) { try manager.remove(vip) }, .wasAbsent)
        XCTAssertEqual(try lab.addresses(on: .node1), ["10.77.0.1/24", "10.77.0.100/16"])
    }

    func testMissingInterfaceIsNamedInTheError() throws {
        try requireRoot()
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let vip = try VirtualAddress(cidr: "10.77.0.100/24", interface: "nope0")
        let expected = VirtualIPError.interfaceNotFound("nope0", address: "10.77.0.100/24")
        try lab.run(in: .node1) {
            let manager = VirtualIPManager()
            XCTAssertThrowsError(try manager.add(vip)) { XCTAssertEqual($0 as? VirtualIPError, expected) }
            XCTAssertThrowsError(try manager.remove(vip)) { XCTAssertEqual($0 as? VirtualIPError, expected) }
            XCTAssertThrowsError(try manager.isPresent(vip)) { XCTAssertEqual($0 as? VirtualIPError, expected) }
            XCTAssertThrowsError(try manager.announce(vip.address, on: "nope0")) {
                XCTAssertEqual($0 as? VirtualIPError, .interfaceNotFound("nope0", address: "10.77.0.100"))
            }
        }
        XCTAssertEqual("\(expected)", "cannot handle 10.77.0.100/24: no interface \"nope0\" in this network namespace (see 'ip link')")
        // The same through the command line.
        let result = try lab.command(in: .node1, [mirrorExecutable, "vip", "add", "10.77.0.100/24", "--interface", "nope0"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("no interface \"nope0\""), result.error)
    }

    func testRefusalsChangeNothingAndSayWhy() throws {
        try requireRoot()
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let vip = try VirtualAddress(cidr: "10.77.0.100/24", interface: "veth-am")
        let manager = VirtualIPManager(options: .init(announcements: 1))

        // The address with another prefix on the same interface.
        try mustRun(["ip", "-n", lab.namespace(.node1), "addr", "add", "10.77.0.100/16", "dev", "veth-am"])
        try lab.run(in: .node1) {
            XCTAssertThrowsError(try manager.add(vip)) { error in
                XCTAssertEqual(error as? VirtualIPError,
                               .addressWithOtherPrefix(address: "10.77.0.100", interface: "veth-am", existingPrefixLength: 16))
            }
        }
        try mustRun(["ip", "-n", lab.namespace(.node1), "addr", "del", "10.77.0.100/16", "dev", "veth-am"])

        // The address on another interface of this host.
        try mustRun(["ip", "-n", lab.namespace(.node1), "addr", "add", "10.77.0.100/32", "dev", "lo"])
        try lab.run(in: .node1) {
            XCTAssertThrowsError(try manager.add(vip)) { error in
                XCTAssertEqual(error as? VirtualIPError,
                               .addressOnOtherInterface(address: "10.77.0.100", interface: "veth-am", existing: "lo"))
                XCTAssertEqual("\(error)", "cannot add 10.77.0.100 on veth-am: this host already has it on lo")
            }
        }
        try mustRun(["ip", "-n", lab.namespace(.node1), "addr", "del", "10.77.0.100/32", "dev", "lo"])

        // Another host holds it: node2 answers node1's probe.
        try mustRun(["ip", "-n", lab.namespace(.node2), "addr", "add", "10.77.0.100/24", "dev", "veth-am"])
        let node2MAC = try lab.mac(.node2)
        try lab.run(in: .node1) {
            XCTAssertThrowsError(try manager.add(vip)) { error in
                XCTAssertEqual(error as? VirtualIPError,
                               .addressInUse(address: "10.77.0.100", interface: "veth-am", owner: MACAddress(node2MAC)!))
            }
            XCTAssertEqual(try manager.probe(vip.address, on: "veth-am", timeout: 0.5), MACAddress(node2MAC))
            XCTAssertNil(try manager.probe(IPv4Address("10.77.0.99")!, on: "veth-am", timeout: 0.2), "nobody has .99")
        }
        XCTAssertEqual(try lab.addresses(on: .node1), ["10.77.0.1/24"], "nothing added by the refusals")
        // Without the probe, the manager does what it is told (the operator's --no-probe).
        let unprobed = VirtualIPManager(options: .init(announcements: 0, probeTimeout: nil))
        XCTAssertEqual(try lab.run(in: .node1) { try unprobed.add(vip) }, .added)
        XCTAssertEqual(try lab.run(in: .node1) { try unprobed.remove(vip) }, .removed)

        // A link without ARP: added, not announced; announcing it by hand is refused.
        let onLoopback = try VirtualAddress(cidr: "10.77.0.200/32", interface: "lo")
        try lab.run(in: .node1) {
            XCTAssertEqual(try manager.add(onLoopback), .added)
            XCTAssertThrowsError(try manager.announce(onLoopback.address, on: "lo")) { error in
                guard case .arpUnsupported(interface: "lo", address: "10.77.0.200", _)? = error as? VirtualIPError else {
                    return XCTFail("\(error)")
                }
            }
            XCTAssertEqual(try manager.remove(onLoopback), .removed)
        }

        // A down interface.
        try mustRun(["ip", "-n", lab.namespace(.node1), "link", "set", "veth-am", "down"])
        try lab.run(in: .node1) {
            XCTAssertThrowsError(try manager.add(vip)) { error in
                XCTAssertEqual(error as? VirtualIPError, .interfaceDown("veth-am", address: "10.77.0.100/24"))
                XCTAssertTrue("\(error)".contains("ip link set veth-am up"), "\(error)")
            }
        }
    }

    /// Without privileges (user nobody, no capabilities), the error says which capability is missing.
    func testUnprivilegedCallerIsToldWhatIsMissing() throws {
        try requireRoot()
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                        mirrorExecutable, "vip"]
        let probing = try lab.command(in: .node1, asNobody + ["add", "10.77.0.100/24", "--interface", "veth-am"])
        XCTAssertEqual(probing.status, 1)
        XCTAssertTrue(probing.error.contains("10.77.0.100 on veth-am: permission denied (needs root or CAP_NET_RAW)"), probing.error)
        let adding = try lab.command(in: .node1, asNobody + ["add", "10.77.0.100/24", "--interface", "veth-am", "--no-probe", "--count", "0"])
        XCTAssertEqual(adding.status, 1)
        XCTAssertTrue(adding.error.contains("adding 10.77.0.100/24 on veth-am: permission denied (needs root or CAP_NET_ADMIN)"), adding.error)
        XCTAssertEqual(try lab.addresses(on: .node1), ["10.77.0.1/24"])
        // Reading needs no privilege.
        let status = try lab.command(in: .node1, asNobody + ["status", "10.77.0.1/24", "--interface", "veth-am"])
        XCTAssertEqual(status.status, 0, status.error)
    }

    func testAddressSyntax() throws {
        XCTAssertEqual(try VirtualAddress(cidr: "10.77.0.100/24", interface: "eth0").description, "10.77.0.100/24 on eth0")
        XCTAssertEqual(try VirtualAddress(cidr: "192.168.1.50", interface: "eth0").cidr, "192.168.1.50/32")
        for bad in ["10.77.0.100/33", "10.77.0/24", "10.77.0.256/24", "10.77.0.100/", "10.77.0.100/2x", "eth0", "", "1.2.3.4/24/1"] {
            XCTAssertThrowsError(try VirtualAddress(cidr: bad, interface: "eth0"), bad) { error in
                guard case .invalidAddress(bad, _)? = error as? VirtualIPError else { return XCTFail("\(bad): \(error)") }
            }
        }
        XCTAssertThrowsError(try VirtualAddress(cidr: "fd00::100/64", interface: "eth0")) { error in
            XCTAssertTrue("\(error)".contains("IPv6 virtual IPs are not supported yet"), "\(error)")
        }
        for bad in ["", "a/b", "eth0:1", "sixteen-chars-xx", "with space"] {
            XCTAssertThrowsError(try VirtualAddress(cidr: "10.0.0.1/8", interface: bad), bad)
        }
        XCTAssertEqual(MACAddress("0E:fe:11:2f:2d:bc")?.description, "0e:fe:11:2f:2d:bc")
        XCTAssertNil(MACAddress("0e:fe:11:2f:2d"))
    }
}
