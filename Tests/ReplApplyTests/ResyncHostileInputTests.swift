import Foundation
import Glibc
import ReplApply
import ReplProtocol
import XCTest
import TestSupport

/// Resync messages that a broken or hostile source could send fail with an errno and a
/// description, never crash the applier, and never touch anything outside the module.
final class ResyncHostileInputTests: XCTestCase {
    func testPathsThroughSymlinksOrFilesAreRefused() throws {
        let pair = try ResyncPair("hostile-paths")
        try pair.outside.dir("sub")
        try pair.outside.dense("sub/f", size: 100)
        try pair.outside.dense("f", size: 100)
        try pair.target.symlink("out", to: pair.outsideRoot)
        try pair.target.symlink("rel", to: "../outside")
        try pair.target.dense("file", size: 10)
        try pair.target.dir("d")
        try pair.target.symlink("d/up", to: "..")
        try pair.outside.stampTimes()
        let outsideBefore = try pair.snapshotOutside()
        let directory = try pair.sourceTree.attributes("", try pair.sourceTree.status(""))
        let entry = ManifestEntry(name: FileName("new")!, attributes: directory)

        let cases: [(Message, Int32)] = [
            (manifest("out", directory, []), ENOTDIR), (manifest("out/sub", directory, []), ENOTDIR),
            (manifest("rel", directory, [entry]), ENOTDIR), (manifest("d/up", directory, []), ENOTDIR),
            (manifest("file", directory, [entry]), ENOTDIR), (manifest("missing", directory, []), ENOENT),
            (manifest("d/up/out", directory, []), ENOTDIR),
            (fileAttributes("out/f", time(1)), ENOTDIR), (fileAttributes("missing", time(1)), ENOENT),
            (region("out/f", [1, 2, 3]), ENOTDIR), (region("rel/sub/f", [0, 0]), ENOTDIR), (region("out", [1]), EINVAL),
            (region("d", [1]), EINVAL), (region("file/x", [1]), ENOTDIR), (region("missing", [1]), ENOENT),
        ]
        for (message, expected) in cases {
            XCTAssertEqual(pair.apply(message), expected, ReplicaApplierDescription.of(message))
        }
        XCTAssertEqual(try pair.snapshotOutside(), outsideBefore, "nothing outside the module changed")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: pair.targetRoot).sorted(), ["d", "file", "out", "rel"])

        // A file's attributes never reach what a symbolic link points to.
        XCTAssertEqual(pair.apply(fileAttributes("out", time(6))), EINVAL)
        XCTAssertEqual(try pair.snapshotOutside(), outsideBefore)
    }

    /// Entries that make no sense fail one by one; the others of the part are applied, and the
    /// error counts the failures.
    func testInvalidEntriesFailAloneAndTheRestIsApplied() throws {
        let pair = try ResyncPair("hostile-entries")
        let root = try pair.sourceTree.attributes("", try pair.sourceTree.status(""))
        var file = root
        file.mode = UInt32(S_IFREG | 0o644)
        file.size = 10
        var unknownType = file
        unknownType.mode = 0o170644
        var symlink = file
        symlink.mode = UInt32(S_IFLNK | 0o777)
        let entries = [
            ManifestEntry(name: FileName("bad-type")!, attributes: unknownType),
            ManifestEntry(name: FileName("good")!, attributes: file),
            ManifestEntry(name: FileName("link-without-target")!, attributes: symlink),
            ManifestEntry(name: FileName("file-with-target")!, attributes: file, symlinkTarget: SymlinkTarget("x")!),
            ManifestEntry(name: FileName("dir-with-link-key")!, attributes: root, linkKey: 5),
            ManifestEntry(name: FileName("good")!, attributes: file),
            ManifestEntry(name: FileName("huge")!, attributes: { var a = file; a.size = UInt64.max; return a }()),
            ManifestEntry(name: FileName("also-good")!, attributes: root),
        ]
        XCTAssertEqual(pair.apply(.resyncDirectory(DirectoryManifest(module: 0, path: nil, attributes: root, part: 0, isLast: true, entries: entries))),
                       EINVAL)
        let description = pair.lastError?.description ?? ""
        XCTAssert(description.contains("entry 'bad-type': ") && description.contains("unknown file type"), description)
        XCTAssert(description.contains("(and 4 more failures in this part)"), description)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: pair.targetRoot).sorted(), ["also-good", "good", "huge"],
                       "valid entries applied ('huge' created)")
        var st = stat()
        XCTAssertEqual(lstat(pair.targetRoot + "/good", &st), 0)
        XCTAssertEqual(st.st_size, 0, "a file the listing creates stays empty: its size comes with resyncFile")

        var notADirectory = root
        notADirectory.mode = UInt32(S_IFREG | 0o644)
        XCTAssertEqual(pair.apply(.resyncDirectory(DirectoryManifest(module: 0, path: nil, attributes: notADirectory, part: 0, isLast: true, entries: []))),
                       EINVAL, "a directory's own attributes must be a directory's")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: pair.targetRoot).count, 3, "and nothing was removed")
    }

    /// A link key first used for a regular file and then for a FIFO: the FIFO is made as such
    /// (the first name is not of its type), nothing is linked across types.
    func testALinkKeyReusedForAnotherTypeMakesNoLink() throws {
        let pair = try ResyncPair("hostile-links")
        let root = try pair.sourceTree.attributes("", try pair.sourceTree.status(""))
        var file = root
        file.mode = UInt32(S_IFREG | 0o644)
        var fifo = root
        fifo.mode = UInt32(S_IFIFO | 0o600)
        let entries = [
            ManifestEntry(name: FileName("a")!, attributes: file, linkKey: 9),
            ManifestEntry(name: FileName("b")!, attributes: fifo, linkKey: 9),
            ManifestEntry(name: FileName("c")!, attributes: fifo, linkKey: 9),
        ]
        XCTAssertEqual(pair.apply(.resyncDirectory(DirectoryManifest(module: 0, path: nil, attributes: root, part: 0, isLast: true, entries: entries))), 0)
        var (a, b, c) = (stat(), stat(), stat())
        XCTAssertEqual(lstat(pair.targetRoot + "/a", &a), 0)
        XCTAssertEqual(lstat(pair.targetRoot + "/b", &b), 0)
        XCTAssertEqual(lstat(pair.targetRoot + "/c", &c), 0)
        XCTAssertEqual(a.st_mode & S_IFMT, S_IFREG)
        XCTAssertEqual(b.st_mode & S_IFMT, S_IFIFO)
        XCTAssertEqual(b.st_ino, c.st_ino, "the FIFO became the key's first name, and c a link to it")
    }

    // MARK: Helpers

    private func manifest(_ path: String, _ attributes: EntryAttributes, _ entries: [ManifestEntry]) -> Message {
        .resyncDirectory(DirectoryManifest(module: 0, path: RelativePath(path)!, attributes: attributes, part: 0, isLast: true, entries: entries))
    }

    private func region(_ path: String, _ bytes: [UInt8]) -> Message {
        .resyncRegion(ResyncRegion(module: 0, target: .path(RelativePath(path)!), offset: 0, data: bytes[...]))
    }

    private func time(_ seconds: Int64) -> Timestamp { Timestamp(seconds: seconds, nanoseconds: 0) }
}

/// A short description of a message for assertion messages.
enum ReplicaApplierDescription {
    static func of(_ message: Message) -> String {
        switch message {
        case .resyncDirectory(let m): return "resyncDirectory \(m.path.map(\.description) ?? "root")"
        case .resyncFile(let m): return "resyncFile \(m.path)"
        case .resyncRegion(let m): return "resyncRegion \(m.target)"
        default: return "\(message.type)"
        }
    }
}

/// A `resyncFile` for `path` with a small regular file's attributes, modified at `time`.
private func fileAttributes(_ path: String, _ time: Timestamp) -> Message {
    .resyncFile(ResyncFile(module: 0, path: RelativePath(path)!, attributes: EntryAttributes(
        mode: 0o100644, uid: 0, gid: 0, size: 10, accessTime: time, modificationTime: time, xattrs: [])))
}
