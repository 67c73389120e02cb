import CLinux
import Glibc
import ReplApply
import ReplProtocol
import XCTest
import TestSupport

/// A whole resync (manifests parents first, checksum exchange, differing regions, times) makes a
/// target that differs in every way a tree can differ identical to the source, and touches
/// nothing outside the module.
final class ResyncTreeTests: XCTestCase {
    func testResyncMakesAVeryDifferentTreeIdentical() throws {
        let pair = try ResyncPair("resync-tree")
        try buildSource(pair.source, outside: pair.outsideRoot)
        try buildTarget(pair.target, outside: pair.outsideRoot)
        try pair.outside.dense("victim", size: 5000, seed: 77, mode: 0o640)
        try pair.outside.dir("victim-dir")
        try pair.source.stampTimes(seed: 0)
        try pair.target.stampTimes(seed: 1)
        try pair.outside.stampTimes(seed: 2)
        let outsideBefore = try pair.snapshotOutside()
        XCTAssertGreaterThan(try pair.differences().count, 30, "the trees start very different")

        let summary = try pair.resync(regionSize: 64 << 10)

        let differences = try pair.differences()
        XCTAssert(differences.isEmpty, "trees differ:\n" + differences.joined(separator: "\n"))
        XCTAssertEqual(try pair.snapshotOutside(), outsideBefore, "nothing outside the module changed")
        XCTAssertEqual(try TreeSnapshot(of: pair.targetRoot).linkGroups, [["d1/d2/z", "tri/x", "tri/y"], ["d1/hard2", "hard1"]])
        XCTAssertGreaterThan(summary.filesWithRegions, 5)
        XCTAssertLessThan(summary.regionBytes, 2 << 20, "equal regions (same.bin, shrink.bin, most of sparse.bin) are not sent")

        let again = try pair.resync(regionSize: 64 << 10)
        XCTAssertEqual(again.regions, 0, "a second resync finds nothing to send")
        let afterSecond = try pair.differences()
        XCTAssert(afterSecond.isEmpty, "trees differ after a second resync:\n" + afterSecond.joined(separator: "\n"))
    }

    /// Two separate files on the source that are one inode on the target are separated, each
    /// keeping its content; a name whose inode another link key claimed gets its own copy.
    func testHardLinksOnlyOnTheTargetAreSeparated() throws {
        let pair = try ResyncPair("resync-separate")
        try pair.source.dense("a", size: 9000, seed: 1)
        try pair.source.dense("b", size: 9000, seed: 1)
        try pair.source.dense("c", size: 100, seed: 3)
        try pair.source.link("c", "d")
        try pair.source.dense("e", size: 200, seed: 4)
        try pair.source.link("e", "f")
        try pair.source.file("g", size: 1 << 20, writes: [(4096, 10), (900_000, 5000)], seed: 5)
        try pair.target.dense("a", size: 9000, seed: 1)
        try pair.target.link("a", "b")
        try pair.target.dense("c", size: 100, seed: 3)
        for name in ["d", "e", "f"] { try pair.target.link("c", name) }
        try pair.target.file("g", size: 1 << 20, writes: [(4096, 10), (900_000, 5000)], seed: 5)
        try pair.target.link("g", "h")
        try pair.source.stampTimes()
        try pair.target.stampTimes(seed: 1)

        let summary = try pair.resync()

        let differences = try pair.differences()
        XCTAssert(differences.isEmpty, "trees differ:\n" + differences.joined(separator: "\n"))
        XCTAssertEqual(try TreeSnapshot(of: pair.targetRoot).linkGroups, [["c", "d"], ["e", "f"]])
        XCTAssertEqual(summary.filesWithRegions, 1, "only e/f differs in content; a, b and g kept theirs when separated")
    }

    // MARK: Trees

    private func buildSource(_ tree: TreeBuilder, outside: String) throws {
        try tree.dir("d1", mode: 0o755, uid: 1234, gid: 1234)
        try tree.dir("d1/d2", mode: 0o700)
        try tree.dense("d1/d2/deep.txt", size: 3000, seed: 5)
        try tree.dense("same.bin", size: 200_000, seed: 9, mode: 0o600)
        try tree.file("sparse.bin", size: 5 << 20, writes: [(0, 100), (3 << 20, 50)], seed: 11)
        try tree.dense("grow.bin", size: 300_000, seed: 12)
        try tree.dense("shrink.bin", size: 1000, seed: 13)
        try tree.dense("setuid", size: 100, seed: 14, mode: 0o4755)
        try tree.dense("setgid", size: 100, seed: 15, mode: 0o2750, uid: 1234, gid: 5678)
        try tree.dir("sticky", mode: 0o1777)
        try tree.dir("sgid", mode: 0o2755, uid: 1234, gid: 5678)
        try tree.dir("filetodir")
        try tree.dense("filetodir/inner", size: 10, seed: 16)
        try tree.dense("dirtofile", size: 500, seed: 17)
        try tree.dense("linktofile", size: 50, seed: 18)
        try tree.symlink("filetolink", to: "same.bin")
        try tree.symlink("symdiff", to: "new-target", uid: 1234, gid: 1234)
        try tree.symlink("symsame", to: "/etc/passwd", uid: 1234, gid: 0)
        try tree.node("fifo", mode: S_IFIFO | 0o640)
        try tree.node("fifotodir", mode: S_IFIFO | 0o600)
        try tree.node("null", mode: S_IFCHR | 0o666, rdev: deviceNumber(1, 3))
        try tree.node("blk", mode: S_IFBLK | 0o600, rdev: deviceNumber(7, 200))
        try tree.node("sock", mode: S_IFSOCK | 0o755)
        try tree.dense("hard1", size: 4000, seed: 20)
        try tree.link("hard1", "d1/hard2")
        try tree.dir("tri")
        try tree.dense("tri/x", size: 7000, seed: 21)
        try tree.link("tri/x", "tri/y")
        try tree.link("tri/x", "d1/d2/z")
        try tree.dense("x.txt", size: 10, seed: 24)
        try tree.xattr("x.txt", "user.a", "1")
        try tree.xattr("x.txt", "trusted.t", "2")
        try tree.xattr("x.txt", "security.s", "3")
        try tree.dir("xdir")
        try tree.xattr("xdir", "user.d", "dir")
        try tree.dense("acl.txt", size: 10, seed: 25)
        try tree.xattr("acl.txt", "system.posix_acl_access", accessACL(grantingReadTo: 1234))
        try tree.dense("noacl.txt", size: 10, seed: 26)
        try tree.dense("owned", size: 10, seed: 27, uid: 1234, gid: 4321)
        try tree.dense("empty", size: 0)
    }

    private func buildTarget(_ tree: TreeBuilder, outside: String) throws {
        try tree.dir("d1", mode: 0o700)
        try tree.dir("d1/d2", mode: 0o755)
        try tree.dense("d1/d2/deep.txt", size: 3000, seed: 6)
        try tree.dense("same.bin", size: 200_000, seed: 9, mode: 0o644)
        try tree.dense("sparse.bin", size: 1 << 20, seed: 99)
        try tree.dense("grow.bin", size: 10, seed: 12)
        try tree.dense("shrink.bin", size: 1 << 20, seed: 13)
        try tree.dense("setuid", size: 100, seed: 14, mode: 0o755, uid: 1234)
        try tree.dense("setgid", size: 100, seed: 15, mode: 0o750)
        try tree.dir("sticky", mode: 0o755)
        try tree.dense("filetodir", size: 10, seed: 16)
        try tree.dir("dirtofile")
        try tree.dir("dirtofile/a")
        try tree.dir("dirtofile/a/b", mode: 0o500)
        try tree.dense("dirtofile/a/b/c", size: 100, seed: 30)
        try tree.symlink("dirtofile/a/esc", to: outside)
        try tree.node("dirtofile/a/p", mode: S_IFIFO | 0o600)
        try tree.symlink("linktofile", to: outside + "/victim")
        try tree.dense("filetolink", size: 10, seed: 31)
        try tree.symlink("symdiff", to: "old-target")
        try tree.symlink("symsame", to: "/etc/passwd")
        try tree.node("fifo", mode: S_IFIFO | 0o600)
        try tree.dir("fifotodir")
        try tree.node("null", mode: S_IFCHR | 0o666, rdev: deviceNumber(1, 5))
        try tree.dense("hard1", size: 4000, seed: 20)
        try tree.dir("tri")
        try tree.dense("tri/x", size: 7000, seed: 21)
        try tree.dense("tri/y", size: 7000, seed: 21)
        try tree.link("hard1", "d1/d2/z")
        try tree.dense("x.txt", size: 10, seed: 24)
        try tree.xattr("x.txt", "user.a", "0")
        try tree.xattr("x.txt", "user.extra", "x")
        try tree.xattr("x.txt", "trusted.old", "y")
        try tree.xattr("x.txt", "security.old", "z")
        try tree.dir("xdir")
        try tree.dense("acl.txt", size: 10, seed: 25)
        try tree.dense("noacl.txt", size: 10, seed: 26)
        try tree.xattr("noacl.txt", "system.posix_acl_access", accessACL(grantingReadTo: 99))
        try tree.dense("owned", size: 10, seed: 27)
        try tree.dense("extra.txt", size: 100, seed: 40)
        try tree.dir("extradir")
        try tree.dir("extradir/n1")
        try tree.dir("extradir/n1/n2", mode: 0o000)
        try tree.dense("extradir/n1/n2/f", size: 10, seed: 41, mode: 0o000)
        try tree.symlink("extradir/n1/out", to: outside)
        try tree.symlink("extradir/n1/n2/victim", to: outside + "/victim")
        try tree.node("extradir/fifo", mode: S_IFIFO | 0o600)
        try tree.dense("empty", size: 100, seed: 42)
    }
}
