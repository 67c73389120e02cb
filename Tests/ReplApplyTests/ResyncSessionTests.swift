import Glibc
import ReplApply
import ReplProtocol
import XCTest
import TestSupport

/// `resyncBegin` and `resyncEnd` frame a resync's state; status and replies are not applied.
final class ResyncSessionTests: XCTestCase {
    func testBeginAndEndAreAcceptedAndEndWantsCompleteListings() throws {
        let pair = try ResyncPair("session")
        let generations = WireGenerations(current: 3, bitmap: 2, history: [2, 1], upToDate: false)
        XCTAssertEqual(pair.apply(.resyncBegin(ResyncBegin(module: 0, method: .changeMap, source: generations))), 0)
        XCTAssertEqual(pair.apply(.resyncEnd(ResyncEnd(module: 0, generations: generations))), 0)

        try pair.source.dir("d")
        try pair.source.dense("d/f", size: 1)
        try pair.target.dir("d")
        let listing = try pair.sourceTree.manifests().first { $0.path != nil }!
        var unfinished = listing
        unfinished.isLast = false
        XCTAssertEqual(pair.apply(.resyncDirectory(unfinished)), 0)
        XCTAssertEqual(pair.apply(.resyncEnd(ResyncEnd(module: 0, generations: generations))), EINVAL)
        XCTAssert(pair.lastError?.description.contains("the listing of 'd' never got its last part") ?? false, "\(String(describing: pair.lastError))")
        XCTAssertEqual(pair.apply(.resyncEnd(ResyncEnd(module: 0, generations: generations))), 0, "the state was cleared")
        var last = listing
        last.part = 1
        XCTAssertEqual(pair.apply(.resyncDirectory(last)), EINVAL, "the partial listing went with the session")
    }

    /// A new session forgets the last one's hard-link first names: the same link key in the
    /// next resync names another file.
    func testBeginForgetsTheLinkKeysOfTheLastSession() throws {
        let pair = try ResyncPair("session-links")
        let root = try pair.sourceTree.attributes("", try pair.sourceTree.status(""))
        var file = root
        file.mode = UInt32(S_IFREG | 0o644)
        let begin = Message.resyncBegin(ResyncBegin(module: 0, method: .checksum, source: WireGenerations(current: 1, bitmap: 0, history: [], upToDate: true)))
        let linked = { (name: String) in ManifestEntry(name: FileName(name)!, attributes: file, linkKey: 77) }
        let rootListing = Message.resyncDirectory(DirectoryManifest(module: 0, path: nil, attributes: root, part: 0, isLast: true,
                                                                    entries: [linked("a"), linked("b"), ManifestEntry(name: FileName("d")!, attributes: root)]))
        let subListing = Message.resyncDirectory(DirectoryManifest(module: 0, path: RelativePath("d")!, attributes: root, part: 0, isLast: true,
                                                                   entries: [linked("c")]))
        XCTAssertEqual(pair.apply(begin), 0)
        XCTAssertEqual(pair.apply(rootListing), 0)
        XCTAssertEqual(try TreeSnapshot(of: pair.targetRoot).linkGroups, [["a", "b"]])
        XCTAssertEqual(pair.apply(begin), 0)
        XCTAssertEqual(pair.apply(subListing), 0)
        XCTAssertEqual(try TreeSnapshot(of: pair.targetRoot).linkGroups, [["a", "b"]], "d/c is key 77's first name in the new session")
        XCTAssertEqual(pair.apply(rootListing), 0)
        XCTAssertEqual(try TreeSnapshot(of: pair.targetRoot).linkGroups, [["a", "b", "d/c"]], "and a, b are linked to it")
    }

    func testStatusRequestsAndRepliesAreNotApplied() throws {
        let pair = try ResyncPair("session-refused")
        let status = ModuleStatus(module: 0, generations: WireGenerations(current: 1, bitmap: 0, history: [], upToDate: true),
                                  serving: true, dirty: [])
        let checksums = RegionChecksums(module: 0, path: RelativePath("f")!, fileSize: 0, regionSize: 1, digests: [])
        for message: Message in [
            .moduleStatus(status), .moduleStatusReply(ModuleStatusReply(requestSequence: 1, status: status)),
            .regionChecksumsRequest(checksums), .regionChecksumsReply(RegionChecksumsReply(requestSequence: 1, checksums: checksums)),
        ] {
            XCTAssertEqual(pair.apply(message), EINVAL, "\(message.type)")
        }
    }
}
