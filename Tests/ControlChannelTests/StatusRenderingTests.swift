import ControlChannel
import XCTest

final class StatusRenderingTests: XCTestCase {
    func testEveryLineOfASampleReport() {
        XCTAssertEqual(sampleReport.render(colors: false), """
            AM: node1 PRIM, node2 SECOND
              data: up to date (generations current=5F3A9C21D0E4B817 history=0A1B2C3D4E5F6071)
              resync: 42% (1.2 of 2.9 GiB), about 3 min left
              boot: off, errd: disabled
              checker pg-port (tcp): enabled, up
              checker gateway (ping): enabled, down
              checker disk (custom): disabled
              checker eth0 (interface): enabled
              virtual IPs: 192.168.1.10/24, 192.168.2.10/24 (here)
              last failover:
                    0 ms  fault seen
                 3012 ms  peer declared lost
                 3015 ms  promoted
                 3140 ms  virtual IP added
                10480 ms  application started
              note: node2 refused as primary: its copy is older (generation 0A1B2C3D4E5F6071)

            DB: node1 WAIT, node2 not seen
              data: NOT up to date (generations current=77E1)
              boot: on, errd: enabled
              note: waiting for node2 (up to 60 s) before serving alone
            """)
    }

    func testPeerLastKnownButNotSeen() {
        let report = ClusterStatusReport(node: "node2", peer: "node1", modules: [
            ModuleReport(name: "AM", localState: "ALONE", peerState: "PRIM", peerVisible: false, generations: "g", upToDate: true),
        ])
        XCTAssertEqual(report.render(colors: false).split(separator: "\n").first, "AM: node2 ALONE, node1 PRIM (not seen)")
        XCTAssertEqual(ClusterStatusReport(node: "node1", peer: "node2", modules: []).render(colors: false), "no modules")
    }

    func testColorsOnlyWhenAsked() {
        func firstLine(_ local: String, _ peer: String?) -> String {
            let report = ClusterStatusReport(node: "node1", peer: "node2", modules: [
                ModuleReport(name: "AM", localState: local, peerState: peer, peerVisible: peer != nil, generations: "g", upToDate: true),
            ])
            return String(report.render(colors: true).split(separator: "\n")[0])
        }
        XCTAssertEqual(firstLine("PRIM", "SECOND"), "AM: node1 \u{1B}[32mPRIM\u{1B}[0m, node2 \u{1B}[36mSECOND\u{1B}[0m")
        XCTAssertEqual(firstLine("ALONE", nil), "AM: node1 \u{1B}[32mALONE\u{1B}[0m, node2 not seen")
        XCTAssertEqual(firstLine("WAIT", "STOP"), "AM: node1 \u{1B}[33mWAIT\u{1B}[0m, node2 \u{1B}[31mSTOP\u{1B}[0m")
        XCTAssertFalse(sampleReport.render(colors: false).contains("\u{1B}"))
    }
}
