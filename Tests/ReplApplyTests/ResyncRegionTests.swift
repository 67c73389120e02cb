import CLinux
import Foundation
import Glibc
import ReplApply
import ReplProtocol
import XCTest
import TestSupport

/// Regions by path: past the end of the file they extend it, regions of zeros become holes,
/// and a file's capabilities survive the write.
final class ResyncRegionTests: XCTestCase {
    func testRegionsExtendShortFilesAndZerosBecomeHoles() throws {
        let pair = try ResyncPair("regions")
        try pair.target.dense("f", size: 64 << 10, seed: 1)
        let path = pair.targetRoot + "/f"
        var expected = pattern(64 << 10, seed: 1)

        let data = pattern(5000, seed: 2)
        XCTAssertEqual(pair.apply(region("f", at: 100 << 10, data)), 0, "a region past the end extends the file")
        expected += [UInt8](repeating: 0, count: 36 << 10) + data
        XCTAssertEqual(try contents(path), expected)

        XCTAssertEqual(pair.apply(region("f", at: 8192, [UInt8](repeating: 0, count: 16384))), 0, "zeros inside the file")
        expected.replaceSubrange(8192..<24576, with: [UInt8](repeating: 0, count: 16384))
        XCTAssertEqual(pair.apply(region("f", at: 100, [UInt8](repeating: 0, count: 50))), 0, "zeros inside one block")
        expected.replaceSubrange(100..<150, with: [UInt8](repeating: 0, count: 50))
        XCTAssertEqual(try contents(path), expected)
        XCTAssertEqual(try dataSegments(path).first, 0..<8192, "the block-aligned zeros are a hole")

        let end = expected.count
        XCTAssertEqual(pair.apply(region("f", at: UInt64(end - 1000), [UInt8](repeating: 0, count: 9000))), 0, "zeros across the end")
        expected.replaceSubrange((end - 1000)..<end, with: [UInt8](repeating: 0, count: 1000))
        expected += [UInt8](repeating: 0, count: 8000)
        XCTAssertEqual(pair.apply(region("f", at: 1 << 20, [UInt8](repeating: 0, count: 4096))), 0, "zeros past the end")
        expected += [UInt8](repeating: 0, count: (1 << 20) + 4096 - expected.count)
        XCTAssertEqual(try contents(path), expected)
        XCTAssertLessThanOrEqual(try dataSegments(path).last?.upperBound ?? 0, (end + 4095) / 4096 * 4096,
                                 "nothing allocated past the block of the last data")
        XCTAssertEqual(pair.apply(region("f", at: 0, [])), 0, "an empty region changes nothing")
        XCTAssertEqual(try contents(path).count, expected.count)
    }

    func testCapabilitiesSurviveRegionWrites() throws {
        let pair = try ResyncPair("regions-caps")
        try pair.target.dense("tool", size: 8192, seed: 1, mode: 0o755)
        // VFS_CAP_REVISION_2 with the effective flag, CAP_NET_BIND_SERVICE (10) permitted.
        let capability: [UInt8] = [0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00] + [UInt8](repeating: 0, count: 12)
        try pair.target.xattr("tool", "security.capability", capability)
        XCTAssertEqual(pair.apply(region("tool", at: 0, pattern(100, seed: 2))), 0)
        XCTAssertEqual(pair.apply(region("tool", at: 4096, [UInt8](repeating: 0, count: 4096))), 0)
        XCTAssertEqual(try xattr(pair.targetRoot + "/tool", "security.capability"), capability)
    }

    private func region(_ path: String, at offset: UInt64, _ bytes: [UInt8]) -> Message {
        .resyncRegion(ResyncRegion(module: 0, target: .path(RelativePath(path)!), offset: offset, data: bytes[...]))
    }

    private func contents(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw TestFailure("read \(path)") }
        return Array(data)
    }

    private func dataSegments(_ path: String) throws -> [Range<Int>] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TestFailure("open \(path)") }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        var segments: [Range<Int>] = []
        var position: off_t = 0
        while position < st.st_size {
            let data = lseek(fd, position, clinux_SEEK_DATA)
            if data < 0 { break }
            let hole = lseek(fd, data, clinux_SEEK_HOLE)
            segments.append(Int(data)..<Int(hole))
            position = hole
        }
        return segments
    }

    private func xattr(_ path: String, _ name: String) throws -> [UInt8] {
        var value = [UInt8](repeating: 0, count: 256)
        let length = getxattr(path, name, &value, value.count)
        guard length >= 0 else { throw TestFailure("getxattr \(name): \(String(cString: strerror(errno)))") }
        return Array(value[0..<length])
    }
}
