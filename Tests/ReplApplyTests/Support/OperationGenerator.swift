import CLinux
import Glibc
import TestSupport

/// Random but reproducible operations over a small namespace, so that names collide often
/// (after ReplFSTests' generator, with owners, FIFOs, open-file writes and forgets).
struct OperationGenerator {
    private var random: SeededGenerator
    private let files = ["a", "b", "c", "d1/a", "d1/b", "d1/d2/c", "d3/x", "e"]
    private let directories = ["d1", "d1/d2", "d3", "d1/d4"]

    init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    private mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
    private mutating func number(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
    private mutating func anyPath() -> String { number(4) == 0 ? pick(directories) : pick(files) }
    private mutating func owner() -> UInt32 { pick([0, 1000, 65534]) }

    mutating func next() -> Operation {
        let sizes = [0, 1, 100, 4095, 4096, 4097, 65536, 200_000, 1 << 20]
        switch number(30) {
        case 0, 1, 2: return .create(pick(files), mode: pick([0o644, 0o600, 0o755, 0o4755]), uid: owner(), gid: owner(), exclusive: number(3) == 0)
        case 3, 4: return .mkdir(pick(directories), mode: pick([0o755, 0o700, 0o2775]), uid: owner(), gid: owner())
        case 5: return .rmdir(pick(directories))
        case 6: return .unlink(anyPath())
        case 7, 8: return .rename(anyPath(), anyPath(), flags: pick([0, 0, clinux_RENAME_NOREPLACE, clinux_RENAME_EXCHANGE]))
        case 9: return .link(pick(files), pick(files))
        case 10: return .symlink(target: pick(["a", "../b", "d1", "/etc/hostname", "missing"]), pick(files), uid: owner(), gid: owner())
        case 11: return .mknod(pick(files), mode: S_IFIFO | pick([0o600, 0o644]), rdev: 0)
        case 12, 13, 14: return .write(pick(files), offset: pick(sizes), length: pick([1, 512, 4096, 10_000, 70_000]), seed: random.next())
        case 15, 16: return .writeOpenFile(index: number(64), offset: pick(sizes), length: pick([1, 4096, 20_000]), seed: random.next())
        case 17: return .truncate(pick(files), size: pick(sizes))
        case 18: return .chmod(anyPath(), mode: pick([0o600, 0o644, 0o755, 0o4711, 0o2755, 0o1777]))
        case 19: return .chown(anyPath(), uid: owner(), gid: owner())
        case 20: return .utimens(anyPath(), atime: number(3) == 0 ? nil : number(2_000_000_000), mtime: number(3) == 0 ? nil : number(2_000_000_000))
        case 21, 22: return .setxattr(anyPath(), name: pick(["user.a", "user.b"]), value: pick(["1", "two", ""]), flags: pick([0, Int32(XATTR_CREATE), Int32(XATTR_REPLACE)]))
        case 23: return .removexattr(anyPath(), name: pick(["user.a", "user.b"]))
        case 24, 25: return .fallocate(pick(files), mode: pick([0, clinux_FALLOC_FL_KEEP_SIZE, clinux_FALLOC_FL_PUNCH_HOLE | clinux_FALLOC_FL_KEEP_SIZE]), offset: pick(sizes), length: pick([4096, 8192, 100_000]))
        case 26, 27: return .forget(index: number(64))
        default: return .fsync(anyPath(), dataOnly: number(2) == 0)
        }
    }
}
