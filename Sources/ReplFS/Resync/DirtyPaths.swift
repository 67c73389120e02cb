import CLinux
import Glibc
import ReplProtocol

/// Turns journal entries (by inode number) into the paths the peer knows, by walking this
/// node's copy: what a node about to receive a resync tells the source (its own activity log).
public enum DirtyPaths {
    /// The first path found for each inode of `entries` under the directory open at `rootFD`,
    /// at most ``ModuleStatus/maximumDirtyFiles`` files; inodes no longer in the tree are left
    /// out (the source's listings remove or recreate what they were). A directory named whole
    /// makes every file under it whole.
    public static func resolve(_ entries: [UInt64: FileRegions], under rootFD: Int32) -> (files: [DirtyFile], truncated: Bool) {
        guard !entries.isEmpty else { return ([], false) }
        var result: [DirtyFile] = []
        var seen = Set<UInt64>()
        var queue: [(fd: Int32, path: RelativePath?, whole: Bool)] = []
        guard let rootCopy = Optional(fcntl(rootFD, F_DUPFD_CLOEXEC, 0)), rootCopy >= 0 else { return ([], true) }
        queue.append((rootCopy, nil, false))
        var truncated = false
        while !queue.isEmpty {
            let (fd, path, wholeParent) = queue.removeFirst()
            defer { close(fd) }
            guard let listed = try? DirectoryListing.entries(of: fd) else { continue }
            for entry in listed {
                let childPath = path.map { RelativePath(bytes: $0.bytes + [UInt8(ascii: "/")] + entry.entry.name.bytes) }
                    ?? RelativePath(bytes: entry.entry.name.bytes)
                guard let childPath else { continue }
                let regions = wholeParent ? .whole : entries[entry.ino]
                if entry.isDirectory {
                    let child = openat(fd, entry.nameCString, clinux_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if child >= 0 { queue.append((child, childPath, regions == .whole)) }
                } else if entry.isRegularFile, let regions, seen.insert(entry.ino).inserted {
                    guard result.count < ModuleStatus.maximumDirtyFiles else {
                        truncated = true
                        continue
                    }
                    switch regions {
                    case .whole: result.append(DirtyFile(path: childPath, regions: .whole))
                    case .some(let indexes): result.append(DirtyFile(path: childPath, regions: .some(indexes.sorted())))
                    }
                }
            }
        }
        return (result, truncated)
    }
}
