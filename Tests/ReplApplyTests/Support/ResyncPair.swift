import CLinux
import Glibc
import ReplApply
import ReplProtocol
import TestSupport
import XCTest

/// A source directory built by the test, a target directory changed only by a
/// ``ReplicaApplier`` fed the resync messages a ``SourceTree`` makes of the source, and a
/// directory outside both, which nothing may touch.
final class ResyncPair {
    private let scratch: ScratchDirectory
    let sourceRoot: String
    let targetRoot: String
    let outsideRoot: String
    let source: TreeBuilder
    let target: TreeBuilder
    let outside: TreeBuilder
    let applier: ReplicaApplier
    private var nextRequest: UInt64 = 1

    /// The xattr namespaces a resync manages, for snapshots.
    static let xattrPrefixes = ["user.", "trusted.", "security.", "system.posix_acl_"]

    init(_ label: String) throws {
        scratch = try ScratchDirectory(label)
        sourceRoot = try scratch.sub("source")
        targetRoot = try scratch.sub("target")
        outsideRoot = try scratch.sub("outside")
        source = TreeBuilder(root: sourceRoot)
        target = TreeBuilder(root: targetRoot)
        outside = TreeBuilder(root: outsideRoot)
        let rootFD = open(targetRoot, clinux_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw TestFailure("open \(targetRoot)") }
        applier = try ReplicaApplier(rootFD: rootFD)
    }

    var sourceTree: SourceTree { SourceTree(root: sourceRoot) }

    /// The errno the target gave for `message`, 0 on success.
    @discardableResult
    func apply(_ message: Message) -> Int32 {
        do {
            try applier.apply(message)
            return 0
        } catch let error as ApplyError {
            lastError = error
            return error.code
        } catch {
            return -1
        }
    }

    /// The last ``ApplyError`` of ``apply(_:)``.
    private(set) var lastError: ApplyError?

    /// Applies `message`; throws its error.
    func applyOrThrow(_ message: Message) throws {
        try applier.apply(message)
    }

    /// Asks the target which regions of `relative` differ from the source's.
    func differingRegions(_ relative: String, regionSize: Int) throws -> RegionChecksums {
        let request = try sourceTree.checksumRequest(relative, regionSize: regionSize)
        nextRequest += 1
        let reply = try applier.answer(request, requestSequence: nextRequest)
        guard case .regionChecksumsReply(let answer) = reply, answer.requestSequence == nextRequest else {
            throw TestFailure("unexpected answer \(reply)")
        }
        return answer.checksums
    }

    /// What a whole resync sent.
    struct Summary {
        var manifests = 0
        var regions = 0
        var regionBytes = 0
        var filesWithRegions = 0
    }

    /// A whole resync: begin, every manifest (parents first), then for every regular file the
    /// checksum exchange, the regions that differ and the file's size and attributes, then end.
    @discardableResult
    func resync(regionSize: Int = 64 << 10, maximumEntries: Int = DirectoryManifest.maximumEntries) throws -> Summary {
        var summary = Summary()
        let generations = WireGenerations(current: 7, bitmap: 0, history: [6], upToDate: true)
        try applyOrThrow(.resyncBegin(ResyncBegin(module: 0, method: .checksum, source: generations)))
        for manifest in try sourceTree.manifests(maximumEntries: maximumEntries) {
            try applyOrThrow(.resyncDirectory(manifest))
            summary.manifests += 1
        }
        for file in try sourceTree.regularFiles() {
            let differing = try differingRegions(file, regionSize: regionSize)
            if !differing.digests.isEmpty {
                summary.filesWithRegions += 1
                for region in try sourceTree.regions(file, indexes: differing.digests.map(\.index), regionSize: regionSize) {
                    try applyOrThrow(.resyncRegion(region))
                    summary.regions += 1
                    summary.regionBytes += region.data.count
                }
            }
            try applyOrThrow(.resyncFile(try sourceTree.file(file)))
        }
        try applyOrThrow(.resyncEnd(ResyncEnd(module: 0, generations: generations)))
        return summary
    }

    /// A `resyncFile` for every regular file of the source (what the source sends after a
    /// file's regions), without regions.
    func sendFileAttributes() throws {
        for file in try sourceTree.regularFiles() { try applyOrThrow(.resyncFile(try sourceTree.file(file))) }
    }

    /// Differences between the two trees, xattrs of every managed namespace included.
    func differences(includingTimes: Bool = true) throws -> [String] {
        try TreeSnapshot(of: sourceRoot, includingTimes: includingTimes, xattrPrefixes: Self.xattrPrefixes)
            .differences(from: TreeSnapshot(of: targetRoot, includingTimes: includingTimes, xattrPrefixes: Self.xattrPrefixes))
    }

    func snapshotOutside() throws -> TreeSnapshot {
        try TreeSnapshot(of: outsideRoot, includingTimes: true, xattrPrefixes: Self.xattrPrefixes)
    }
}
