@testable import HeartbeatTransport
import Logging
import MirrorCore
import ReplTransport
import TestSupport
import XCTest

/// A real `mirror witness` process, asked by real clients over UDP: its verdicts are the ones
/// `WitnessArbiter` defines, it survives hostile datagrams, it stops on SIGTERM or SIGINT, and a
/// restarted witness waits out old leases and remembers the last served generation.
final class WitnessServiceTests: XCTestCase {
    private let g1 = GenerationID(0x61), g2 = GenerationID(0x62), g3 = GenerationID(0x63), g4 = GenerationID(0x64)
    private var tick = 0

    private func client(_ node: String, _ cluster: WitnessCluster, log: CapturedLog) -> WitnessClient {
        WitnessClient(clusterName: "demo", nodeName: node, witness: cluster.address, presharedKey: cluster.key,
                      timeout: .milliseconds(300), attempts: 4, logger: log.logger(node))
    }

    private func request(_ node: String, serving: GenerationID, data: DataGenerations, forced: Bool = false,
                         kind: WitnessRequestKind = .serve, stamp: TickStamp? = nil) -> WitnessRequest {
        tick += 1
        return WitnessRequest(kind: kind, node: node, stamp: stamp ?? TickStamp(incarnation: node == "node1" ? 1 : 2, tick: tick),
                              servingGeneration: serving, data: data, forced: forced)
    }

    /// Asks until granted (the witness refuses everything during its first lease); the grant's request.
    private func askUntilGranted(_ client: WitnessClient, _ node: String, serving: GenerationID, data: DataGenerations,
                                 module: String = "AM", within: Duration = .seconds(5)) -> WitnessRequest? {
        let deadline = ContinuousClock.now + within
        while ContinuousClock.now < deadline {
            let asked = request(node, serving: serving, data: data)
            if client.ask(asked, module: module)?.mayServe == true { return asked }
            usleep(50_000)
        }
        return nil
    }

    func testVerdictsAreTheArbitersOneLeaseAtATimeNeverAnOlderCopy() throws {
        let cluster = try WitnessCluster()
        let witness = try WitnessProcess(cluster, lease: 2)
        let log = CapturedLog()
        let node1 = client("node1", cluster, log: log), node2 = client("node2", cluster, log: log)
        let old = DataGenerations(current: g1, upToDate: true)

        let early = request("node1", serving: g2, data: old)
        XCTAssertEqual(node1.ask(early, module: "AM"), WitnessVerdict(mayServe: false, request: early.stamp, servingGeneration: g2),
                       "a witness that just started refuses: leases granted before a restart may still run")
        XCTAssertEqual(witness.lines(containing: "refuses every serve").count, 1, witness.log)

        guard let granted = askUntilGranted(node1, "node1", serving: g2, data: old) else { return XCTFail(witness.log) }
        let rival = request("node2", serving: g3, data: old)
        XCTAssertEqual(node2.ask(rival, module: "AM")?.mayServe, false, "node1 holds the lease")
        XCTAssertEqual(witness.lines(containing: "node2 asks to serve under generation 63").last?.contains("node1 holds the lease"), true,
                       witness.log)
        let otherModule = request("node2", serving: g3, data: old)
        XCTAssertEqual(node2.ask(otherModule, module: "DB")?.mayServe, true, "one arbiter per module")

        XCTAssertTrue(node1.release(request("node1", serving: g2, data: old, kind: .release, stamp: granted.stamp), module: "AM"))
        XCTAssertEqual(witness.lines(containing: "node1 released its lease").count, 1, witness.log)
        XCTAssertEqual(node2.ask(request("node2", serving: g3, data: old), module: "AM")?.mayServe, false,
                       "the lease is free, but node2's copy lacks g2, which node1 served")
        XCTAssertTrue(witness.log.contains("its copy lacks generation 62, which node1 served last"), witness.log)
        XCTAssertEqual(node2.ask(request("node2", serving: g3, data: old, forced: true), module: "AM")?.mayServe, true,
                       "a forced prim skips the data check")
        let caughtUp = DataGenerations(current: g3, history: [g2, g1], upToDate: true)
        XCTAssertEqual(node1.ask(request("node1", serving: g4, data: caughtUp), module: "AM")?.mayServe, false, "node2 holds it now")
        XCTAssertEqual(witness.stop(), 0)
    }

    func testTwoNodesAskingAtOnceGetExactlyOneGrant() throws {
        let cluster = try WitnessCluster()
        let witness = try WitnessProcess(cluster, lease: 1)
        let log = CapturedLog()
        let clients = ["node1": client("node1", cluster, log: log), "node2": client("node2", cluster, log: log)]
        let data = DataGenerations(current: g2, history: [g1], upToDate: true)
        // Past the quiet start, then DB is used so that this probe leaves AM untouched.
        XCTAssertNotNil(askUntilGranted(clients["node1"]!, "node1", serving: g2, data: data, module: "DB"))
        for round in 0..<3 {
            var verdicts: [String: WitnessVerdict?] = [:]
            var requests: [String: WitnessRequest] = [:]
            for node in ["node1", "node2"] { requests[node] = request(node, serving: g2, data: data) }
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                let node = index == 0 ? "node1" : "node2"
                let verdict = clients[node]!.ask(requests[node]!, module: "AM")
                lock.withLock { verdicts[node] = verdict }
            }
            let granted = verdicts.filter { $0.value?.mayServe == true }.map(\.key)
            XCTAssertEqual(granted.count, 1, "round \(round): \(verdicts)")
            XCTAssertEqual(verdicts.values.compactMap { $0 }.count, 2, "both answered")
            if let winner = granted.first {
                let release = request(winner, serving: g2, data: data, kind: .release, stamp: requests[winner]!.stamp)
                XCTAssertTrue(clients[winner]!.release(release, module: "AM"))
            }
        }
        XCTAssertEqual(witness.stop(signal: SIGINT), 0)
        XCTAssertTrue(witness.log.contains("SIGINT: stopping"), witness.log)
    }

    /// Garbage, forgeries, strangers, answers sent to the witness, repeats and replays: dropped or
    /// answered without a new decision; the witness keeps serving.
    func testHostileDatagramsAreDroppedAndReplaysAreNotDecidedAgain() throws {
        let cluster = try WitnessCluster()
        let witness = try WitnessProcess(cluster, lease: 1)
        let codec = WitnessCodec(presharedKey: cluster.key)
        let raw = try RawSender(from: "127.0.0.1")
        let data = DataGenerations(current: g1, upToDate: true)
        func message(cluster name: String = "demo", module: String = "AM", node: String = "node1", nonce: UInt64 = 5,
                     challenge: UInt64 = 0, body: WitnessMessage.Body? = nil) throws -> [UInt8] {
            try codec.encode(WitnessMessage(nonce: nonce, challenge: challenge, cluster: name, module: module, node: node,
                                            body: body ?? .request(request(node, serving: g2, data: data))))
        }
        let hostile: [(String, [UInt8])] = [
            ("not a mirror witness message", Array(repeating: 0x58, count: 80)),
            ("oversized: 5000 bytes", Array(repeating: 0x4D, count: 5000)),
            ("truncated: 10 bytes", Array("MWT\u{1}garbag".utf8)),
            ("not authenticated by the cluster key", try WitnessCodec(presharedKey: Array("some other key, thirty-two bytes or more".utf8))
                .encode(WitnessMessage(nonce: 1, challenge: 0, cluster: "demo", module: "AM", node: "node1",
                                       body: .request(request("node1", serving: g2, data: data))))),
            ("from cluster \"other\"", try message(cluster: "other")),
            ("from node \"node3\"", try message(node: "node3")),
            ("about module \"XX\"", try message(module: "XX")),
            ("unexpected answer sent to the witness", try message(body: .verdict(WitnessVerdict(mayServe: true, request: TickStamp(incarnation: 1, tick: 1), servingGeneration: g2)))),
            ("witness protocol version 9", { var bytes = Array("MWT".utf8) + [9]; bytes += Array(repeating: 0, count: 70); return bytes }()),
        ]
        for (_, bytes) in hostile { raw.send(bytes, to: cluster.address) }
        XCTAssertNil(raw.receive(timeout: .milliseconds(200)), "no answer to any of them")
        for (text, _) in hostile { XCTAssertTrue(witness.log.contains(text), "no line with \(text):\n\(witness.log)") }

        // Past the quiet start, by hand: a request without a challenge gets one; with it, a verdict.
        usleep(1_100_000)
        let first = try message(nonce: 77)
        raw.send(first, to: cluster.address)
        guard let challengeBytes = raw.receive(timeout: .seconds(2)),
              case .success(let challenge) = codec.decode(challengeBytes[...]), challenge.body == .challenge else {
            return XCTFail("no challenge:\n\(witness.log)")
        }
        XCTAssertEqual(challenge.nonce, 77)
        let answered = try message(nonce: 78, challenge: challenge.challenge)
        raw.send(answered, to: cluster.address)
        guard let verdictBytes = raw.receive(timeout: .seconds(2)), case .success(let verdict) = codec.decode(verdictBytes[...]),
              case .verdict(let decided) = verdict.body else {
            return XCTFail("no verdict:\n\(witness.log)")
        }
        XCTAssertTrue(decided.mayServe)
        let decisions = witness.lines(containing: "asks to serve").count
        // The same datagram again (a lost answer, or a replay): the same answer, no new decision.
        raw.send(answered, to: cluster.address)
        XCTAssertEqual(raw.receive(timeout: .seconds(2)), verdictBytes)
        // Its challenge again with another nonce (a replayed old request): only a new challenge.
        raw.send(try message(nonce: 79, challenge: challenge.challenge), to: cluster.address)
        guard let again = raw.receive(timeout: .seconds(2)), case .success(let fresh) = codec.decode(again[...]) else {
            return XCTFail("no answer to a stale challenge")
        }
        XCTAssertEqual(fresh.body, .challenge)
        XCTAssertNotEqual(fresh.challenge, challenge.challenge)
        // Replayed again and again: the outstanding challenge does not change, so the node's own next request still counts.
        for nonce in UInt64(80)..<90 {
            raw.send(try message(nonce: nonce, challenge: challenge.challenge), to: cluster.address)
            guard let bytes = raw.receive(timeout: .seconds(2)), case .success(let answer) = codec.decode(bytes[...]) else {
                return XCTFail("no answer to a replay")
            }
            XCTAssertEqual(answer.body, .challenge)
            XCTAssertEqual(answer.challenge, fresh.challenge)
        }
        usleep(100_000)
        XCTAssertEqual(witness.lines(containing: "asks to serve").count, decisions, witness.log)

        // And real clients are still answered.
        let log = CapturedLog()
        let node1 = client("node1", cluster, log: log)
        XCTAssertEqual(node1.ask(request("node1", serving: g2, data: data), module: "AM")?.mayServe, true, witness.log)
        XCTAssertEqual(witness.stop(), 0)
        XCTAssertTrue(witness.log.contains("SIGTERM: stopping"), witness.log)
        XCTAssertTrue(witness.log.contains("witness stopped"), witness.log)
    }

    func testARestartedWitnessWaitsOutOldLeasesButTheLastServedNodeAndRemembersItsGeneration() throws {
        let cluster = try WitnessCluster()
        let log = CapturedLog()
        let node1 = client("node1", cluster, log: log), node2 = client("node2", cluster, log: log)
        let old = DataGenerations(current: g1, upToDate: true)
        do {
            let witness = try WitnessProcess(cluster, lease: 1, name: "first")
            XCTAssertNotNil(askUntilGranted(node1, "node1", serving: g2, data: old), witness.log)
            XCTAssertEqual(witness.stop(), 0)
        }
        let witness = try WitnessProcess(cluster, lease: 1, name: "second")
        XCTAssertTrue(witness.log.contains("module AM: node1 served last under generation 62"), witness.log)
        XCTAssertEqual(node2.ask(request("node2", serving: g3, data: old), module: "AM")?.mayServe, false)
        XCTAssertTrue(witness.log.contains("refuses every serve during its first 1.0 s (node1's lease granted before a restart"), witness.log)
        // node1, which may still be serving under its old lease, renews it at once: no outage for a witness restart.
        let renewal = request("node1", serving: g2, data: DataGenerations(current: g2, bitmap: g1, upToDate: true))
        XCTAssertEqual(node1.ask(renewal, module: "AM")?.mayServe, true, witness.log)
        XCTAssertTrue(node1.release(request("node1", serving: g2, data: old, kind: .release, stamp: renewal.stamp), module: "AM"))
        usleep(1_100_000)
        XCTAssertEqual(node2.ask(request("node2", serving: g3, data: old), module: "AM")?.mayServe, false,
                       "node2's copy lacks g2, which node1 served before the restart")
        XCTAssertTrue(witness.log.contains("its copy lacks generation 62, which node1 served last"), witness.log)
        XCTAssertEqual(node2.ask(request("node2", serving: g3, data: DataGenerations(current: g2, history: [g1], upToDate: true)),
                                 module: "AM")?.mayServe, true)
        XCTAssertEqual(witness.stop(), 0)
    }

    func testNoWitnessMeansNoVerdictWithinTheRetries() throws {
        let log = CapturedLog()
        let nowhere = NetworkAddress(host: "127.0.0.3", port: try freePort(on: "127.0.0.3", type: SOCK_DGRAM))
        let client = WitnessClient(clusterName: "demo", nodeName: "node1", witness: nowhere, presharedKey: testKey,
                                   timeout: .milliseconds(100), attempts: 3, logger: log.logger("node1"))
        let started = ContinuousClock.now
        XCTAssertNil(client.ask(request("node1", serving: g2, data: .justCreated), module: "AM"))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
        XCTAssertTrue(log.contains("did not answer module AM's request to serve under generation 62 (3 attempts"), log.lines.description)
        XCTAssertNil(client.ask(request("node2", serving: g2, data: .justCreated), module: "AM"), "not this node's request")
    }
}
