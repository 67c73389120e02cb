import Foundation
import Glibc
import ReplApply
import ReplProtocol
import XCTest
import TestSupport

/// A long listing comes in parts: entries are settled part by part, and what no part listed is
/// removed only with the last one.
final class ManifestPartTests: XCTestCase {
    func testExtrasAreRemovedOnlyWithTheLastOfThreeParts() throws {
        let pair = try ResyncPair("parts")
        let count = 40_000
        let names = (0..<count).map { String(format: "f%05d", $0) }
        try pair.source.dir("big")
        try pair.target.dir("big", mode: 0o700)
        for name in names { try pair.source.file("big/" + name, size: 0) }
        for name in names.prefix(count / 2) { try pair.target.file("big/" + name, size: 0, mode: 0o600) }
        let extras = ["a-extra", "f10000x", "zz-extra"]
        for name in extras { try pair.target.dense("big/" + name, size: 10) }
        try pair.target.dir("big/f20000y")
        try pair.target.dense("big/f20000y/inner", size: 10)
        try pair.source.stampTimes()

        let manifests = try pair.sourceTree.manifests().filter { $0.path == RelativePath("big") }
        XCTAssertEqual(manifests.map(\.entries.count), [16384, 16384, 7232])
        XCTAssertEqual(manifests.map(\.isLast), [false, false, true])
        try pair.applyOrThrow(.resyncDirectory(try pair.sourceTree.manifests().first { $0.path == nil }!))
        for (index, manifest) in manifests.enumerated() {
            let started = Date()
            try pair.applyOrThrow(.resyncDirectory(manifest))
            print("part \(index) of \(manifest.entries.count) entries applied in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
            let present = Set(try FileManager.default.contentsOfDirectory(atPath: pair.targetRoot + "/big"))
            let listedSoFar = manifests[...index].flatMap { $0.entries.map(\.name.description) }
            XCTAssert(Set(listedSoFar).isSubset(of: present), "part \(index): every entry listed so far exists")
            if manifest.isLast {
                XCTAssertEqual(present, Set(names), "the last part removed the extras and nothing listed")
            } else {
                XCTAssert(Set(extras + ["f20000y"]).isSubset(of: present), "part \(index): extras stay until the last part")
            }
        }
        // Files that were already there keep their attributes until their resyncFile.
        try pair.sendFileAttributes()
        let differences = try pair.differences(includingTimes: true)
        XCTAssert(differences.isEmpty, differences.prefix(20).joined(separator: "\n"))
    }

    /// A part out of order is refused and drops the listing so far: no later part removes anything.
    func testPartsOutOfOrderAreRefusedAndRemoveNothing() throws {
        let pair = try ResyncPair("parts-order")
        for name in ["a", "b", "c"] { try pair.source.dense(name, size: 1) }
        try pair.target.dense("extra", size: 1)
        let entries = try pair.sourceTree.manifests()[0].entries
        let attributes = try pair.sourceTree.attributes("", try pair.sourceTree.status(""))
        func part(_ index: UInt32, last: Bool, _ slice: ArraySlice<ManifestEntry>) -> Message {
            .resyncDirectory(DirectoryManifest(module: 0, path: nil, attributes: attributes, part: index, isLast: last, entries: Array(slice)))
        }
        XCTAssertEqual(pair.apply(part(1, last: false, entries[0..<1])), EINVAL, "part 1 without part 0")
        XCTAssertEqual(pair.apply(part(0, last: false, entries[0..<1])), 0)
        XCTAssertEqual(pair.apply(part(2, last: true, entries[2..<3])), EINVAL, "part 2 after part 0")
        XCTAssert(pair.lastError?.description.contains("part 2 arrived where part 1 was expected") ?? false, "\(String(describing: pair.lastError))")
        XCTAssertEqual(pair.apply(part(1, last: true, entries[1..<3])), EINVAL, "the listing was dropped")
        XCTAssert(FileManager.default.fileExists(atPath: pair.targetRoot + "/extra"), "nothing removed on a broken listing")

        XCTAssertEqual(pair.apply(part(0, last: false, entries[0..<2])), 0)
        XCTAssertEqual(pair.apply(part(0, last: false, entries[2..<3])), 0, "a part 0 starts the listing over")
        XCTAssertEqual(pair.apply(part(1, last: true, [])), 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: pair.targetRoot), ["c"],
                       "only the restarted listing counts: a and b, listed before the restart, are removed too")
    }
}
