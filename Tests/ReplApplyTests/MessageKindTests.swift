import CLinux
import Glibc
import ReplApply
import ReplProtocol
import XCTest
import TestSupport

/// Every message kind, applied to an empty replica, leaves it identical to the primary.
final class MessageKindTests: XCTestCase {
    func testEveryOperationKindEndsIdentical() throws {
        let pair = try MirrorPair("kinds")
        let operations: [Operation] = [
            .mkdir("d", mode: 0o750, uid: 1000, gid: 100), .mkdir("d/s", mode: 0o2775, uid: 0, gid: 0),
            .mkdir("d/s/inherits", mode: 0o755, uid: 0, gid: 0),
            .create("f", mode: 0o640, uid: 1000, gid: 1000, exclusive: true),
            .create("d/s/setuid", mode: 0o4755, uid: 1234, gid: 5678, exclusive: false),
            .write("f", offset: 0, length: 5000, seed: 1), .write("f", offset: 1 << 20, length: 10, seed: 2),
            .fallocate("f", mode: 0, offset: 0, length: 8192),
            .fallocate("f", mode: clinux_FALLOC_FL_KEEP_SIZE, offset: 4 << 20, length: 65536),
            .fallocate("f", mode: clinux_FALLOC_FL_PUNCH_HOLE | clinux_FALLOC_FL_KEEP_SIZE, offset: 4096, length: 4096),
            .truncate("f", size: 700_000),
            .mknod("fifo", mode: S_IFIFO | 0o640, rdev: 0), .mknod("null", mode: S_IFCHR | 0o600, rdev: 0x103 /* 1:3, /dev/null */),
            .symlink(target: "../f", "d/link", uid: 1000, gid: 1000), .symlink(target: "/etc/passwd", "abs", uid: 0, gid: 0),
            .link("f", "d/f2"), .rename("d/f2", "g", flags: 0),
            .create("h", mode: 0o600, uid: 0, gid: 0, exclusive: true),
            .rename("g", "h", flags: clinux_RENAME_NOREPLACE), .rename("g", "h", flags: clinux_RENAME_EXCHANGE),
            .chmod("h", mode: 0o4711), .chown("h", uid: 65534, gid: 65534), .chown("abs", uid: 7, gid: 8),
            .setxattr("f", name: "user.k", value: "v1", flags: 0), .setxattr("d", name: "user.dir", value: "", flags: 0),
            .setxattr("f", name: "user.k", value: "v2", flags: Int32(XATTR_REPLACE)),
            .removexattr("d", name: "user.dir"),
            .fsync("f", dataOnly: false), .fsync("f", dataOnly: true), .fsync("d", dataOnly: false),
            .unlink("abs"), .rmdir("d/s/inherits"),
        ]
        for operation in operations {
            if let mismatch = pair.replicate(operation) { XCTFail(mismatch) }
        }
        XCTAssertEqual(pair.apply(.fsync(Fsync(module: 0, node: .root, dataOnly: false))), 0, "fsync of the root")
        pair.forgetAll()
        XCTAssertEqual(try TreeSnapshot(of: pair.replicaRoot).entries.count, 9, "every entry made it")
        XCTAssertEqual(pair.applier.boundNodeCount, 1, "only the root stays bound")
        XCTAssertEqual(pair.applier.openWritableFileCount, 0)
        let differences = try pair.treeDifferences()
        XCTAssert(differences.isEmpty, differences.joined(separator: "\n"))
    }

    /// Exact times, `UTIME_OMIT` and `UTIME_NOW` as the primary sent them.
    func testTimesAreSetExactlyOrToNow() throws {
        let pair = try MirrorPair("times")
        for operation: Operation in [
            .create("f", mode: 0o644, uid: 0, gid: 0, exclusive: true), .write("f", offset: 0, length: 10, seed: 1),
            .mkdir("d", mode: 0o755, uid: 0, gid: 0), .symlink(target: "f", "s", uid: 0, gid: 0),
            .utimens("f", atime: 1_000_000, mtime: 2_000_000), .utimens("d", atime: nil, mtime: 3_000_000),
            .utimens("d", atime: 4_000_000, mtime: nil), .utimens("s", atime: 5, mtime: 6),
        ] {
            if let mismatch = pair.replicate(operation) { XCTFail(mismatch) }
        }
        let differences = try pair.treeDifferences(includingTimes: true)
        XCTAssert(differences.isEmpty, differences.joined(separator: "\n"))

        let file = pair.primary.knownNodes.first!
        let now = SetAttributes(module: 0, node: file, accessTime: .now, modificationTime: .now)
        XCTAssertEqual(pair.apply(.setAttributes(now)), 0)
        var st = stat()
        XCTAssertEqual(lstat(pair.replicaRoot + "/f", &st), 0)
        XCTAssertLessThan(abs(st.st_mtim.tv_sec - time(nil)), 10, "UTIME_NOW uses the replica's clock")
    }

    /// A region sent by path (no id known yet) lands in the file at that path, never through a symlink.
    func testResyncRegionByNodeAndByPath() throws {
        let pair = try MirrorPair("resync")
        for operation: Operation in [
            .mkdir("d", mode: 0o755, uid: 0, gid: 0), .create("d/f", mode: 0o644, uid: 0, gid: 0, exclusive: true),
            .symlink(target: "d", "s", uid: 0, gid: 0),
        ] {
            if let mismatch = pair.replicate(operation) { XCTFail(mismatch) }
        }
        let bytes = pattern(3000, seed: 9)
        XCTAssertEqual(pair.apply(.resyncRegion(ResyncRegion(module: 0, target: .path(RelativePath("d/f")!), offset: 100, data: bytes[...]))), 0)
        XCTAssertEqual(pair.apply(.resyncRegion(ResyncRegion(module: 0, target: .path(RelativePath("s/f")!), offset: 0, data: bytes[...]))), ENOTDIR)
        XCTAssertEqual(pair.apply(.resyncRegion(ResyncRegion(module: 0, target: .path(RelativePath("d")!), offset: 0, data: bytes[...]))), EINVAL)
        let content = try XCTUnwrap(FileManager.default.contents(atPath: pair.replicaRoot + "/d/f"))
        XCTAssertEqual(Array(content), [UInt8](repeating: 0, count: 100) + bytes)
    }
}
