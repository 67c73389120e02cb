import Foundation
import Glibc
import ReplApply
import ReplProtocol
import XCTest
import TestSupport

/// Live operations name files by node id, interleaved with a resync that works by path: a node
/// whose file a manifest removes or replaces is unbound, so later operations on it fail with
/// `ESTALE` (and the source resends the file) instead of writing to an orphan.
final class ResyncBindingTests: XCTestCase {
    func testNodesOfRemovedOrReplacedFilesAreUnbound() throws {
        let pair = try ResyncPair("bindings")
        let (removed, dir, inner, kept, replaced, truncated) = (NodeRef(2), NodeRef(3), NodeRef(4), NodeRef(5), NodeRef(6), NodeRef(7))
        for message: Message in [
            .create(Create(module: 0, parent: .root, name: FileName("gone")!, node: removed, mode: 0o644, uid: 0, gid: 0, flags: 0)),
            .mkdir(Mkdir(module: 0, parent: .root, name: FileName("dir")!, node: dir, mode: 0o755, uid: 0, gid: 0)),
            .create(Create(module: 0, parent: dir, name: FileName("inner")!, node: inner, mode: 0o644, uid: 0, gid: 0, flags: 0)),
            .create(Create(module: 0, parent: .root, name: FileName("kept")!, node: kept, mode: 0o644, uid: 0, gid: 0, flags: 0)),
            .create(Create(module: 0, parent: .root, name: FileName("replaced")!, node: replaced, mode: 0o644, uid: 0, gid: 0, flags: 0)),
            .create(Create(module: 0, parent: .root, name: FileName("truncated")!, node: truncated, mode: 0o644, uid: 0, gid: 0, flags: 0)),
        ] {
            XCTAssertEqual(pair.apply(message), 0, "\(message.type)")
        }
        for node in [removed, inner, kept, replaced, truncated] {
            XCTAssertEqual(pair.apply(write(node, 4096)), 0, "written (and a writable descriptor cached) before the resync")
        }
        XCTAssertEqual(pair.applier.boundNodeCount, 7)
        try pair.source.dense("kept", size: 4096)
        try pair.source.dir("replaced")
        try pair.source.dense("truncated", size: 10)

        try pair.applyOrThrow(.resyncDirectory(try pair.sourceTree.manifests()[0]))

        for node in [removed, dir, inner, replaced] {
            XCTAssertEqual(pair.apply(write(node, 100)), ESTALE, "\(node) is unbound")
            XCTAssert(pair.lastError?.description.contains("a resync removed or replaced its file") ?? false,
                      "\(String(describing: pair.lastError))")
        }
        XCTAssertEqual(pair.apply(write(kept, 100)), 0, "a file the manifest keeps stays bound")
        XCTAssertEqual(pair.apply(write(truncated, 20)), 0, "a file the manifest truncates stays bound")
        XCTAssertEqual(pair.applier.boundNodeCount, 3)
        XCTAssertEqual(pair.applier.openWritableFileCount, 2, "the unbound nodes' writable descriptors are closed")
        XCTAssertEqual(try deletedFiles(under: pair.targetRoot), [], "no descriptor keeps an orphan alive")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: pair.targetRoot).sorted(), ["kept", "replaced", "truncated"])

        XCTAssertEqual(pair.apply(.forget(Forget(module: 0, node: removed))), 0, "the primary's forget of an unbound node is accepted")
        XCTAssertEqual(pair.apply(.forget(Forget(module: 0, node: removed))), ESTALE, "once")
        XCTAssertEqual(pair.apply(.bind(Bind(module: 0, node: replaced, parent: .root, name: FileName("replaced")!))), 0)
        XCTAssertEqual(pair.apply(.mkdir(Mkdir(module: 0, parent: replaced, name: FileName("sub")!, node: NodeRef(8), mode: 0o755, uid: 0, gid: 0))), 0,
                       "a rebound node works again")
        XCTAssertEqual(pair.apply(.forget(Forget(module: 0, node: dir))), 0)
        XCTAssertEqual(pair.apply(.forget(Forget(module: 0, node: inner))), 0)
    }

    /// A node bound to one name of a multi-link inode: replacing that name (another link key
    /// claimed the inode) unbinds it too, while the inode lives on under its other name.
    func testSeparatingAHardLinkUnbindsItsNodes() throws {
        let pair = try ResyncPair("bindings-links")
        try pair.target.dense("a", size: 100, seed: 1)
        try pair.target.link("a", "b")
        try pair.source.dense("a", size: 100, seed: 1)
        try pair.source.dense("b", size: 100, seed: 1)
        XCTAssertEqual(pair.apply(.bind(Bind(module: 0, node: NodeRef(2), parent: .root, name: FileName("b")!))), 0)

        try pair.applyOrThrow(.resyncDirectory(try pair.sourceTree.manifests()[0]))

        XCTAssertEqual(pair.apply(write(NodeRef(2), 10)), ESTALE)
        try pair.sendFileAttributes()
        XCTAssertEqual(try TreeSnapshot(of: pair.targetRoot).linkGroups, [])
        XCTAssertEqual(try pair.differences(includingTimes: false), [])
    }

    private func write(_ node: NodeRef, _ count: Int) -> Message {
        .write(Write(module: 0, node: node, offset: 0, data: ArraySlice(pattern(count, seed: node.id))))
    }

    /// Unlinked files under `root` that a descriptor of this process still holds.
    private func deletedFiles(under root: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { entry in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry),
                  target.hasPrefix(root + "/"), target.hasSuffix(" (deleted)") else { return nil }
            return target
        }
    }
}
