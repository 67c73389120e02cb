import Glibc
import ReplProtocol

/// Writable descriptors of regular files, by node id, kept open between writes and closed least
/// recently used first beyond `capacity`.
///
/// A descriptor is reopened from the node's `O_PATH` descriptor when needed, so closing one
/// loses nothing: the `O_PATH` descriptor keeps following the inode, unlinked or renamed.
final class WritableDescriptors {
    let capacity: Int
    private var open: [UInt64: (fd: Int32, lastUse: UInt64)] = [:]
    private var clock: UInt64 = 0

    /// - Precondition: `capacity` ≥ 1.
    init(capacity: Int) {
        precondition(capacity >= 1, "at least one writable descriptor")
        self.capacity = capacity
    }

    deinit {
        for entry in open.values { Glibc.close(entry.fd) }
    }

    var count: Int { open.count }

    /// The writable descriptor of `ref`, from the cache or from `opening` (then cached).
    func descriptor(for ref: NodeRef, opening: () throws -> Int32) throws -> Int32 {
        clock += 1
        if let entry = open[ref.id] {
            open[ref.id] = (entry.fd, clock)
            return entry.fd
        }
        let fd = try opening()
        if open.count >= capacity { evictLeastRecentlyUsed() }
        open[ref.id] = (fd, clock)
        return fd
    }

    /// Closes the descriptor of `ref`, if one is open.
    func close(_ ref: NodeRef) {
        if let entry = open.removeValue(forKey: ref.id) { Glibc.close(entry.fd) }
    }

    /// A linear scan, done only when the cache is full and a new file is written.
    private func evictLeastRecentlyUsed() {
        guard let oldest = open.min(by: { $0.value.lastUse < $1.value.lastUse }) else { return }
        open.removeValue(forKey: oldest.key)
        Glibc.close(oldest.value.fd)
    }
}
