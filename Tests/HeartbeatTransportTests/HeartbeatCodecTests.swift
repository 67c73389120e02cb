@testable import HeartbeatTransport
import Crypto
import MirrorCore
import TestSupport
import XCTest

/// The heartbeat datagram: every field survives the trip; nothing else than an intact,
/// authenticated datagram is accepted, and nothing crashes the decoder.
final class HeartbeatCodecTests: XCTestCase {
    private let codec = HeartbeatCodec(presharedKey: testKey)

    private func datagram(_ modules: [ModuleHeartbeat], sender: String = "node1") -> HeartbeatDatagram {
        HeartbeatDatagram(path: 1, incarnation: 0x1122_3344_5566_7788, sequence: 99, cluster: "demo", sender: sender, modules: modules)
    }

    /// Every optional present and absent, every state, extreme values.
    private var variedModules: [ModuleHeartbeat] {
        var modules: [ModuleHeartbeat] = []
        let generations: [DataGenerations?] = [
            nil,
            .justCreated,
            DataGenerations(current: GenerationID(.max), bitmap: GenerationID(1), history: [GenerationID(2), GenerationID(3)], upToDate: true),
            DataGenerations(current: GenerationID(5), bitmap: nil, history: [GenerationID(4)], upToDate: false),
        ]
        for (index, state) in ModuleState.allCases.enumerated() {
            for (variant, data) in generations.enumerated() {
                let announcement = Announcement(
                    state: state, generations: data, mayServe: variant % 2 == 0,
                    resyncSession: variant == 1 ? TickStamp(incarnation: .max, tick: Int.min) : nil)
                let heartbeat = Heartbeat(from: "node1", announcement: announcement,
                                          stamp: TickStamp(incarnation: UInt64(index), tick: variant == 3 ? Int.max : -variant),
                                          echo: variant >= 2 ? TickStamp(incarnation: 9, tick: 77) : nil)
                modules.append(ModuleHeartbeat(module: "m\(index)-\(variant)-é", heartbeat: heartbeat))
            }
        }
        return modules
    }

    func testEveryFieldRoundTrips() throws {
        let original = datagram(variedModules)
        let bytes = try codec.encode(original)
        XCTAssertLessThanOrEqual(bytes.count, HeartbeatDatagram.maximumSize)
        XCTAssertEqual(try codec.decode(bytes[...]).get(), original)
        XCTAssertEqual(try codec.decode(codec.encode(datagram([]))[...]).get(), datagram([]), "no module at all")
    }

    func testRandomHeartbeatsRoundTrip() throws {
        var random = SeededGenerator(seed: 0x4842)
        for _ in 0..<300 {
            var modules: [ModuleHeartbeat] = []
            for index in 0..<random.int(in: 0...4) {
                let history = (0..<random.int(in: 0...2)).map { _ in GenerationID(random.next()) }
                let data = random.chance(0.2) ? nil : DataGenerations(
                    current: GenerationID(random.next()), bitmap: random.chance(0.5) ? GenerationID(random.next()) : nil,
                    history: history, upToDate: random.chance(0.5))
                let announcement = Announcement(state: random.pick(ModuleState.allCases), generations: data, mayServe: random.chance(0.5),
                                                resyncSession: random.chance(0.3) ? TickStamp(incarnation: random.next(), tick: Int(bitPattern: UInt(random.next()))) : nil)
                let heartbeat = Heartbeat(from: "n", announcement: announcement,
                                          stamp: TickStamp(incarnation: random.next(), tick: Int(bitPattern: UInt(random.next()))),
                                          echo: random.chance(0.5) ? TickStamp(incarnation: random.next(), tick: random.int(in: 0...1000)) : nil)
                modules.append(ModuleHeartbeat(module: "module\(index)", heartbeat: heartbeat))
            }
            let original = HeartbeatDatagram(path: UInt8(random.int(in: 0...255)), incarnation: random.next(), sequence: random.next(),
                                             cluster: "c", sender: "n", modules: modules)
            XCTAssertEqual(try codec.decode(codec.encode(original)[...]).get(), original)
        }
    }

    func testEveryChangedByteIsRefused() throws {
        let bytes = try codec.encode(datagram(Array(variedModules.prefix(4))))
        for index in bytes.indices {
            var changed = bytes
            changed[index] ^= 0x20
            guard case .failure(let reason) = codec.decode(changed[...]) else {
                return XCTFail("byte \(index) changed and still accepted")
            }
            XCTAssertTrue(["unauthenticated", "not-a-heartbeat", "unsupported-version"].contains(reason.category), "\(index): \(reason)")
        }
    }

    func testEveryTruncationAndAnOversizedDatagramAreRefused() throws {
        let bytes = try codec.encode(datagram(Array(variedModules.prefix(3))))
        for length in 0..<bytes.count {
            guard case .failure(let reason) = codec.decode(bytes.prefix(length)) else { return XCTFail("\(length) bytes accepted") }
            XCTAssertTrue(["truncated", "unauthenticated", "not-a-heartbeat"].contains(reason.category), "\(length): \(reason)")
        }
        let big = [UInt8](repeating: 0x4D, count: HeartbeatDatagram.maximumSize + 1)
        XCTAssertEqual(codec.decode(big[...]), .failure(.oversized(HeartbeatDatagram.maximumSize + 1)))
    }

    func testAnotherKeyOrTheWitnessKeyDoesNotAuthenticate() throws {
        let other = HeartbeatCodec(presharedKey: Array("another key of at least thirty-two bytes!".utf8))
        let bytes = try other.encode(datagram([], sender: "node9"))
        XCTAssertEqual(codec.decode(bytes[...]), .failure(.unauthenticated(claimedCluster: "demo", claimedSender: "node9")))
        XCTAssertTrue("\(HeartbeatDropReason.unauthenticated(claimedCluster: "demo", claimedSender: "node9"))".contains("different key_file"))
        // Domain separation: the derived keys differ from each other and from the pre-shared key.
        let heartbeat = ClusterKeys.heartbeat(presharedKey: testKey), witness = ClusterKeys.witness(presharedKey: testKey)
        XCTAssertNotEqual(heartbeat, witness)
        XCTAssertNotEqual(heartbeat, SymmetricKeyBytes.key(testKey))
        var writer = WireWriter()
        writer.append(raw: try codec.encode(datagram([])).dropLast(DatagramTag.size))
        DatagramTag.append(to: &writer, key: witness)
        XCTAssertEqual(codec.decode(writer.bytes[...]).failureCategory, "unauthenticated", "signed with the witness key")
    }

    /// Authenticated but wrong inside (a buggy or future peer): refused as malformed, never trusted.
    func testAuthenticatedButMalformedIsRefused() throws {
        let key = ClusterKeys.heartbeat(presharedKey: testKey)
        func signed(_ body: [UInt8]) -> ArraySlice<UInt8> {
            var writer = WireWriter()
            writer.append(raw: body)
            DatagramTag.append(to: &writer, key: key)
            return writer.bytes[...]
        }
        let good = Array(try codec.encode(datagram(Array(variedModules.prefix(1)))).dropLast(DatagramTag.size))
        XCTAssertEqual(codec.decode(signed(good)).failureCategory, nil)
        XCTAssertEqual(codec.decode(signed(good + [0])), .failure(.malformed("1 unexpected bytes after module[0]")))
        XCTAssertEqual(codec.decode(signed(Array(good.dropLast()))).failureCategory, "malformed", "short")
        // The first module's state byte sits after the header and the name.
        let stateOffset = 4 + 1 + 8 + 8 + 5 + 6 + 2 + 1 + "m0-0-é".utf8.count
        var badState = good
        badState[stateOffset] = 9
        XCTAssertEqual(codec.decode(signed(badState)), .failure(.malformed("invalid module[0].state: unknown state 9")))
        var badFlags = good
        badFlags[stateOffset + 1] |= 0x80
        XCTAssertEqual(codec.decode(signed(badFlags)).failureCategory, "malformed")
        var badName = good
        badName[4 + 1 + 8 + 8 + 1] = 0xFF
        XCTAssertEqual(codec.decode(signed(badName)), .failure(.malformed("invalid cluster: not UTF-8")))
        var future = good
        future[3] = 2
        XCTAssertEqual(codec.decode(signed(future)), .failure(.unsupportedVersion(2)))
    }

    func testRandomBytesNeverCrash() {
        var random = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            var bytes = random.bytes(random.int(in: 0...300))
            if random.chance(0.5), bytes.count >= 4 { bytes.replaceSubrange(0..<4, with: Array("MHB".utf8) + [1]) }
            XCTAssertNotNil(codec.decode(bytes[...]).failureCategory)
        }
    }
}

/// The replay and de-duplication rules, with a hand-driven clock.
final class PeerSequenceTests: XCTestCase {
    private let start = ContinuousClock.now

    func testSequencesMustGrowOnEachPathAndCopiesAreDeliveredOnce() {
        var peer = PeerSequence(pathCount: 2, silence: .seconds(5))
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 1, path: 0, now: start), .deliver(restarted: false))
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 1, path: 1, now: start), .duplicate, "the copy on path 1")
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 1, path: 0, now: start), .refuse(.replayed(incarnation: 10, sequence: 1, newest: 1)))
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 3, path: 1, now: start), .deliver(restarted: false))
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 2, path: 0, now: start), .deliver(restarted: false),
                       "2 never arrived yet: a slower path may still bring it")
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 2, path: 1, now: start), .refuse(.replayed(incarnation: 10, sequence: 2, newest: 3)))
    }

    func testANewerIncarnationStartsOverAnOlderOneWaitsForSilence() {
        var peer = PeerSequence(pathCount: 1, silence: .seconds(5))
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 50, path: 0, now: start), .deliver(restarted: false))
        XCTAssertEqual(peer.admit(incarnation: 11, sequence: 1, path: 0, now: start + .seconds(1)), .deliver(restarted: true))
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 51, path: 0, now: start + .seconds(2)),
                       .refuse(.olderIncarnation(10, current: 11)))
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 52, path: 0, now: start + .milliseconds(5999)),
                       .refuse(.olderIncarnation(10, current: 11)))
        XCTAssertEqual(peer.admit(incarnation: 10, sequence: 53, path: 0, now: start + .seconds(6)), .deliver(restarted: true),
                       "incarnation 11 silent for 5 s: the peer's clock went back")
    }

    func testTheDeliveryWindowForgetsNothingWithin64() {
        var window = DeliveryWindow()
        for sequence: UInt64 in [100, 90, 37, 101, 164, 100, 99] { _ = window.firstTime(sequence) }
        XCTAssertFalse(window.firstTime(101))
        XCTAssertTrue(window.firstTime(102))
        XCTAssertFalse(window.firstTime(100), "more than 64 behind the newest (164) counts as seen")
        XCTAssertTrue(window.firstTime(163))
        XCTAssertFalse(window.firstTime(164))
    }
}

private enum SymmetricKeyBytes {
    static func key(_ bytes: [UInt8]) -> SymmetricKey { SymmetricKey(data: bytes) }
}

extension Result where Failure == HeartbeatDropReason {
    var failureCategory: String? {
        if case .failure(let reason) = self { return reason.category }
        return nil
    }
}
