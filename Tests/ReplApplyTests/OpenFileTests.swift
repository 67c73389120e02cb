import Foundation
import Glibc
import ReplApply
import ReplProtocol
import XCTest
import TestSupport

/// Writes to a node whose names were removed or replaced still reach that inode on the replica,
/// as on the primary; hard links are one node.
final class OpenFileTests: XCTestCase {
    func testWritesAfterUnlinkReachTheUnlinkedInode() throws {
        let pair = try MirrorPair("unlinked")
        replicate(pair, [
            .create("f", mode: 0o644, uid: 0, gid: 0, exclusive: true), .write("f", offset: 0, length: 100, seed: 1),
            .unlink("f"), .writeOpenFile(index: 0, offset: 50, length: 5000, seed: 2),
            .create("f", mode: 0o600, uid: 0, gid: 0, exclusive: true), .write("f", offset: 0, length: 10, seed: 3),
        ])
        XCTAssertEqual(try deletedFileContents(under: pair.replicaRoot), try deletedFileContents(under: pair.primaryRoot))
        XCTAssertEqual(try deletedFileContents(under: pair.replicaRoot).map(\.count), [5050], "the write went to the unlinked file")
        assertIdentical(pair)
    }

    func testWritesAfterRenameOverReachTheReplacedInode() throws {
        let pair = try MirrorPair("renamed")
        replicate(pair, [
            .create("old", mode: 0o644, uid: 0, gid: 0, exclusive: true), .write("old", offset: 0, length: 1000, seed: 1),
            .create("new", mode: 0o644, uid: 0, gid: 0, exclusive: true), .write("new", offset: 0, length: 10, seed: 2),
            .rename("new", "old", flags: 0), .writeOpenFile(index: 0, offset: 2000, length: 300, seed: 3),
            .rename("old", "moved", flags: 0), .writeOpenFile(index: 1, offset: 20, length: 30, seed: 4),
        ])
        XCTAssertEqual(try deletedFileContents(under: pair.replicaRoot).map(\.count), [2300])
        XCTAssertEqual(try deletedFileContents(under: pair.replicaRoot), try deletedFileContents(under: pair.primaryRoot))
        assertIdentical(pair)
    }

    func testHardLinksAreOneNode() throws {
        let pair = try MirrorPair("links")
        replicate(pair, [
            .mkdir("d", mode: 0o755, uid: 0, gid: 0), .create("f", mode: 0o644, uid: 0, gid: 0, exclusive: true),
            .link("f", "d/g"), .link("d/g", "h"),
        ])
        let step = pair.primary.perform(.write("d/g", offset: 0, length: 4096, seed: 1))
        XCTAssert(step.binds.isEmpty, "the second name reaches the node already known")
        for message in [step.operation!] { XCTAssertEqual(pair.apply(message), 0) }
        replicate(pair, [.unlink("f"), .write("h", offset: 8192, length: 1, seed: 2), .chmod("d/g", mode: 0o600)])
        XCTAssertEqual(try TreeSnapshot(of: pair.replicaRoot).linkGroups, [["d/g", "h"]])
        assertIdentical(pair)
    }

    /// With room for two writable descriptors, five files written in turn (one unlinked meanwhile)
    /// still end identical: evicted descriptors are reopened from the node's O_PATH descriptor.
    func testWritableDescriptorCapReopensEvictedFiles() throws {
        let pair = try MirrorPair("cap", maximumOpenFiles: 2)
        let names = ["a", "b", "c", "d", "e"]
        replicate(pair, names.map { .create($0, mode: 0o644, uid: 0, gid: 0, exclusive: true) })
        for round in 0..<3 {
            replicate(pair, names.enumerated().map { .write($1, offset: round * 1000, length: 500, seed: UInt64($0 + round * 10)) })
            XCTAssertLessThanOrEqual(pair.applier.openWritableFileCount, 2)
        }
        replicate(pair, [.unlink("c")])
        replicate(pair, (0..<5).map { .writeOpenFile(index: $0, offset: 4000, length: 100, seed: UInt64($0)) })
        XCTAssertEqual(try deletedFileContents(under: pair.replicaRoot), try deletedFileContents(under: pair.primaryRoot))
        assertIdentical(pair)
    }

    // MARK: Helpers

    private func replicate(_ pair: MirrorPair, _ operations: [Operation], file: StaticString = #filePath, line: UInt = #line) {
        for operation in operations {
            if let mismatch = pair.replicate(operation) { XCTFail(mismatch, file: file, line: line) }
        }
    }

    private func assertIdentical(_ pair: MirrorPair, file: StaticString = #filePath, line: UInt = #line) {
        pair.forgetAll()
        XCTAssertEqual(pair.applier.boundNodeCount, 1, file: file, line: line)
        do {
            let differences = try pair.treeDifferences()
            XCTAssert(differences.isEmpty, differences.joined(separator: "\n"), file: file, line: line)
        } catch {
            XCTFail("\(error)", file: file, line: line)
        }
    }

    /// Contents of the unlinked files under `root` that this process still holds descriptors
    /// of (the primary model's or the applier's), found through /proc/self/fd, sorted.
    private func deletedFileContents(under root: String) throws -> [Data] {
        var contents: [Data] = []
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry),
                  target.hasPrefix(root + "/"), target.hasSuffix(" (deleted)") else { continue }
            let fd = open("/proc/self/fd/" + entry, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            contents.append(FileHandle(fileDescriptor: fd).readDataToEndOfFile())
        }
        return Array(Set(contents)).sorted { $0.count < $1.count }
    }
}
