import CLinux
import Foundation
import Glibc
import XCTest
import TestSupport

/// The same operation sequences on a plain directory and on ReplFS mounted over another one
/// must give the same results, the same errno and, once unmounted, the same trees.
final class DifferentialTests: XCTestCase {
    /// Seeds of the random runs; a failure names its seed, and the run replays from it.
    static let seeds: [UInt64] = Array(1...16)
    static let operationsPerSeed = 500

    func testRandomOperationSequencesMatchPlainDirectory() throws {
        try requireMountPrivileges()
        for seed in Self.seeds {
            var generator = OperationGenerator(seed: seed)
            let operations = (0..<Self.operationsPerSeed).map { _ in generator.next() }
            try compare(operations, label: "seed \(seed)")
        }
    }

    /// The same on the single-threaded loop without splice, the other data path.
    func testRandomOperationSequencesWithoutSpliceOnOneThread() throws {
        try requireMountPrivileges()
        for seed in Self.seeds.map({ $0 + 1000 }).prefix(6) {
            var generator = OperationGenerator(seed: seed)
            let operations = (0..<Self.operationsPerSeed).map { _ in generator.next() }
            try compare(operations, label: "seed \(seed), --no-splice --threads 1", mountArguments: ["--no-splice", "--threads", "1"])
        }
    }

    /// A fixed sequence that goes through every flag the random one may miss.
    func testEveryOperationKind() throws {
        try requireMountPrivileges()
        let excl = Operation.create("f", mode: 0o640, exclusive: true)
        let ops: [Operation] = [
            .mkdir("d", mode: 0o750), .mkdir("d", mode: 0o750), excl, excl,
            .write("f", offset: 0, length: 5000, seed: 1), .read("f", offset: 100, length: 4000),
            .append("f", length: 300, seed: 2), .stat("f"), .openTruncate("f"), .stat("f"),
            .write("f", offset: 1 << 20, length: 10, seed: 3),
            .seek("f", offset: 0, whence: clinux_SEEK_DATA), .seek("f", offset: 0, whence: clinux_SEEK_HOLE),
            .seek("f", offset: 2 << 20, whence: clinux_SEEK_DATA),
            .fallocate("f", mode: 0, offset: 0, length: 8192),
            .fallocate("f", mode: clinux_FALLOC_FL_KEEP_SIZE, offset: 4 << 20, length: 65536), .stat("f"),
            .fallocate("f", mode: clinux_FALLOC_FL_PUNCH_HOLE | clinux_FALLOC_FL_KEEP_SIZE, offset: 4096, length: 4096),
            .fallocate("f", mode: clinux_FALLOC_FL_PUNCH_HOLE, offset: 0, length: 4096),
            .truncate("f", size: 3000), .truncate("d", size: 0), .truncate("missing", size: 1),
            .create("g", mode: 0o600, exclusive: false), .copyRange("f", "g", from: 10, to: 50, length: 2000),
            .read("g", offset: 0, length: 4096),
            .link("f", "d/f2"), .link("d", "d2"), .link("f", "g"), .stat("f"),
            .symlink(target: "../f", "d/s"), .readlink("d/s"), .readlink("f"), .symlink(target: "x", "d/s"),
            .mkfifo("p"), .stat("p"), .read("p", offset: 0, length: 1),
            .rename("f", "g", flags: clinux_RENAME_NOREPLACE), .rename("f", "g", flags: clinux_RENAME_EXCHANGE),
            .read("f", offset: 0, length: 4096), .rename("d", "g", flags: 0), .rename("g", "d", flags: 0),
            .rename("d", "d/sub", flags: 0), .rename("f", "h", flags: 0), .rename("h", "h", flags: 0),
            .chmod("h", mode: 0o4755), .chown("h", uid: 1234, gid: 5678), .stat("h"), .chmod("d/s", mode: 0o600),
            .utimens("h", atime: 1_000_000, mtime: 2_000_000), .utimens("h", atime: nil, mtime: 3_000_000),
            .utimens("d/s", atime: 5, mtime: 6), .touchNow("h"),
            .setxattr("h", name: "user.k", value: "v1", flags: 0), .setxattr("h", name: "user.k", value: "v2", flags: Int32(XATTR_CREATE)),
            .setxattr("h", name: "user.j", value: "w", flags: Int32(XATTR_REPLACE)), .getxattr("h", name: "user.k"),
            .getxattr("h", name: "user.none"), .setxattr("d/s", name: "user.k", value: "v", flags: 0),
            .listxattr("h"), .removexattr("h", name: "user.k"), .removexattr("h", name: "user.k"), .listxattr("h"),
            .setxattr("d", name: "user.dir", value: "yes", flags: 0),
            .fsync("h", dataOnly: false), .fsync("h", dataOnly: true), .fsync("d", dataOnly: false),
            .rmdir("d"), .unlink("d"), .unlink("d/f2"), .unlink("d/s"), .rmdir("d"), .readdir(""), .readdir("nope"),
        ]
        try compare(ops, label: "fixed sequence")
    }

    /// Runs `operations` on both sides, stopping at the first different outcome, then compares trees.
    private func compare(_ operations: [Operation], label: String, mountArguments: [String] = []) throws {
        let scratch = try ScratchDirectory("diff")
        let plain = OperationRunner(root: try scratch.sub("plain"))
        let backingPath = try scratch.sub("replfs")
        let mount = try ReplFSMount(over: backingPath, extraArguments: mountArguments)
        defer { mount.stop() }
        let mounted = OperationRunner(root: backingPath)
        for (index, operation) in operations.enumerated() {
            let expected = plain.apply(operation)
            let actual = mounted.apply(operation)
            if expected != actual {
                let recent = operations[max(0, index - 12)..<index].map { "  \($0)" }.joined(separator: "\n")
                XCTFail("\(label), step \(index): \(operation): plain directory gave \(expected), ReplFS gave \(actual); preceding operations:\n\(recent)")
                return
            }
        }
        mount.stop()
        let differences = try TreeSnapshot(of: plain.root).differences(from: TreeSnapshot(of: backingPath))
        XCTAssert(differences.isEmpty, "\(label): trees differ after unmounting:\n" + differences.joined(separator: "\n"))
    }
}

/// Random but reproducible operations over a small namespace, so that names collide often.
struct OperationGenerator {
    private var random: SeededGenerator
    // Symlink targets stay inside the tree: one escaping it would make both runs share a file.
    private let files = ["a", "b", "c", "d1/a", "d1/b", "d1/d2/c", "d3/x", "e"]
    private let directories = ["d1", "d1/d2", "d3", "d1/d4"]

    init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    private mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
    private mutating func number(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
    private mutating func anyPath() -> String { number(4) == 0 ? pick(directories) : pick(files) }

    mutating func next() -> Operation {
        let sizes = [0, 1, 100, 4095, 4096, 4097, 65536, 200_000, 1 << 20]
        switch number(31) {
        case 0, 1, 2: return .create(pick(files), mode: pick([0o644, 0o600, 0o755]), exclusive: number(3) == 0)
        case 3, 4: return .mkdir(pick(directories), mode: pick([0o755, 0o700, 0o2775]))
        case 5: return .rmdir(pick(directories))
        case 6: return .unlink(anyPath())
        case 7: return .rename(anyPath(), anyPath(), flags: pick([0, 0, clinux_RENAME_NOREPLACE, clinux_RENAME_EXCHANGE]))
        case 8: return .link(pick(files), pick(files))
        case 9: return .symlink(target: pick(["a", "b", "d1", "d3/x", "missing"]), pick(files))
        case 10: return .readlink(pick(files))
        case 11, 12, 13: return .write(pick(files), offset: pick(sizes), length: pick([1, 512, 4096, 10_000, 70_000]), seed: random.next())
        case 14: return .append(pick(files), length: pick([1, 100, 5000]), seed: random.next())
        case 15, 16: return .read(anyPath(), offset: pick(sizes), length: pick([1, 4096, 100_000]))
        case 17: return .truncate(anyPath(), size: pick(sizes))
        case 18: return .chmod(anyPath(), mode: pick([0o600, 0o644, 0o755, 0o4711, 0o2755, 0o1777]))
        case 19: return .chown(anyPath(), uid: pick([0, 1000, 65534]), gid: pick([0, 100, 65534]))
        case 20: return .utimens(anyPath(), atime: number(3) == 0 ? nil : number(2_000_000_000), mtime: number(3) == 0 ? nil : number(2_000_000_000))
        case 21: return .setxattr(anyPath(), name: pick(["user.a", "user.b"]), value: pick(["1", "two", ""]), flags: pick([0, Int32(XATTR_CREATE), Int32(XATTR_REPLACE)]))
        case 22: return .getxattr(anyPath(), name: pick(["user.a", "user.b"]))
        case 23: return .removexattr(anyPath(), name: pick(["user.a", "user.b"]))
        case 24: return .listxattr(anyPath())
        case 25: return .fallocate(pick(files), mode: pick([0, clinux_FALLOC_FL_KEEP_SIZE, clinux_FALLOC_FL_PUNCH_HOLE | clinux_FALLOC_FL_KEEP_SIZE]), offset: pick(sizes), length: pick([4096, 8192, 100_000]))
        case 26: return .seek(pick(files), offset: pick(sizes), whence: pick([clinux_SEEK_DATA, clinux_SEEK_HOLE]))
        case 27: return .copyRange(pick(files), pick(files), from: pick(sizes), to: pick(sizes), length: pick([1, 5000, 100_000]))
        case 28: return .stat(anyPath())
        case 29: return .readdir(pick(["", "d1", "d1/d2", "d3"]))
        default: return .fsync(anyPath(), dataOnly: number(2) == 0)
        }
    }
}
