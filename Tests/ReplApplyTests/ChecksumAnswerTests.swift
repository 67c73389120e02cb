import Glibc
import ReplApply
import ReplProtocol
import XCTest
import TestSupport

/// `regionChecksumsRequest` is answered with the target's digests of the regions that differ.
final class ChecksumAnswerTests: XCTestCase {
    func testOnlyDifferingRegionsAreAnswered() throws {
        let pair = try ResyncPair("checksums")
        let region = 4096
        // Source: 10 regions; the target differs in region 3, ends in the middle of region 7.
        var content = pattern(10 * region, seed: 1)
        try pair.source.dense("f", size: content.count, seed: 1)
        content[3 * region + 17] ^= 0xff
        let targetSize = 7 * region + 100
        try writeFile(pair.targetRoot + "/f", Array(content[..<targetSize]))

        let answer = try pair.differingRegions("f", regionSize: region)

        XCTAssertEqual(answer.fileSize, UInt64(targetSize))
        XCTAssertEqual(answer.regionSize, UInt32(region))
        XCTAssertEqual(answer.path, RelativePath("f"))
        XCTAssertEqual(answer.digests.map(\.index), [3, 7, 8, 9], "equal regions omitted; differing, short and beyond-EOF included")
        XCTAssertEqual(answer.digests[0].digest, ContentDigest(hashing: content[(3 * region)..<(4 * region)]), "the target's digest")
        let shortRead = Array(content[(7 * region)..<targetSize]) + [UInt8](repeating: 0, count: 8 * region - targetSize)
        XCTAssertEqual(answer.digests[1].digest, ContentDigest(hashing: shortRead), "the short read, zeros beyond the end")
        XCTAssertEqual(answer.digests[2].digest, ContentDigest(hashing: [UInt8](repeating: 0, count: region)),
                       "nothing to read: zeros, as the file will read once resized")
    }

    func testEqualFilesGetAnEmptyAnswerAndMissingFilesSizeZero() throws {
        let pair = try ResyncPair("checksums-equal")
        try pair.source.file("sparse", size: 1 << 20, writes: [(100_000, 5000)], seed: 2)
        try pair.target.file("sparse", size: 1 << 20, writes: [(100_000, 5000)], seed: 2)
        try pair.source.dense("missing", size: 50_000, seed: 3)
        try pair.source.dir("d")
        try pair.source.dense("d/missing", size: 50_000, seed: 3)
        try pair.source.dense("empty", size: 0)
        try pair.target.dense("empty", size: 0)

        let equal = try pair.differingRegions("sparse", regionSize: 64 << 10)
        XCTAssertEqual(equal.digests, [])
        XCTAssertEqual(equal.fileSize, 1 << 20)
        for path in ["missing", "d/missing"] {
            let missing = try pair.differingRegions(path, regionSize: 64 << 10)
            XCTAssertEqual(missing.digests, [], path)
            XCTAssertEqual(missing.fileSize, 0, path)
        }
        XCTAssertEqual(try pair.differingRegions("empty", regionSize: 1).digests, [])
    }

    /// Region indexes whose offset overflows are beyond any end of file: they hash nothing.
    func testHugeIndexesHashNothing() throws {
        let pair = try ResyncPair("checksums-huge")
        try pair.target.dense("f", size: 10, seed: 1)
        let other = ContentDigest(hashing: [UInt8(1)])
        let request = RegionChecksums(module: 0, path: RelativePath("f")!, fileSize: 0, regionSize: 4 << 20, digests: [
            RegionDigest(index: 0, digest: other), RegionDigest(index: UInt64.max / 2, digest: other),
            RegionDigest(index: UInt64.max, digest: ContentDigest(hashing: [UInt8]())),
        ])
        guard case .regionChecksumsReply(let reply) = try pair.applier.answer(request, requestSequence: 42) else {
            return XCTFail("not a reply")
        }
        XCTAssertEqual(reply.requestSequence, 42)
        XCTAssertEqual(reply.checksums.digests.map(\.index), [0, UInt64.max / 2])
        XCTAssertEqual(reply.checksums.digests[1].digest, ContentDigest(hashing: [UInt8]()))
    }

    func testNonRegularFilesAndSymlinksOnThePathAreRefused() throws {
        let pair = try ResyncPair("checksums-refused")
        try pair.target.dir("d")
        try pair.target.dense("d/f", size: 10)
        try pair.target.symlink("s", to: "d")
        try pair.target.symlink("l", to: "d/f")
        try pair.target.node("p", mode: S_IFIFO | 0o600)
        try pair.outside.dense("f", size: 10)
        try pair.target.symlink("out", to: pair.outsideRoot)
        let cases: [(String, Int32)] = [("d", EINVAL), ("l", EINVAL), ("p", EINVAL), ("s/f", ENOTDIR), ("out/f", ENOTDIR), ("d/f/x", ENOTDIR)]
        for (path, expected) in cases {
            let request = RegionChecksums(module: 0, path: RelativePath(path)!, fileSize: 10, regionSize: 10,
                                          digests: [RegionDigest(index: 0, digest: ContentDigest(hashing: [UInt8(0)]))])
            XCTAssertThrowsError(try pair.applier.answer(request, requestSequence: 1), path) { error in
                XCTAssertEqual((error as? ApplyError)?.code, expected, "\(path): \(error)")
            }
        }
    }

    private func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure("open \(path)") }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else { throw TestFailure("write \(path)") }
    }
}
