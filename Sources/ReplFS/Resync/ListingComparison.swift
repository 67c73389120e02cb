import Glibc
import ReplProtocol

/// What `mirror verify` reports for one directory: how this node's copy of it differs from the
/// peer's listing, one line per difference, changing nothing.
public enum ListingComparison {
    /// - Parameters:
    ///   - theirs: the peer's listing of the directory (all parts in one).
    ///   - dirFD: this node's copy of the directory (any descriptor, `O_PATH` included).
    ///   - here, there: node names for the lines.
    public static func differences(_ theirs: DirectoryManifest, dirFD: Int32, here: String, there: String) throws -> [String] {
        let prefix = theirs.path.map { "\($0)/" } ?? ""
        let mine = Dictionary(try DirectoryListing.entries(of: dirFD).map { ($0.entry.name, $0.entry) }, uniquingKeysWith: { a, _ in a })
        var lines: [String] = []
        let ownAttributes = try DirectoryListing.attributes(of: dirFD)
        lines += attributeDifferences(ownAttributes, theirs.attributes, what: theirs.path.map { "\($0)/" } ?? "./",
                                      here: here, there: there, compareSize: false)
        let theirNames = Set(theirs.entries.map(\.name))
        for entry in theirs.entries {
            let name = prefix + "\(entry.name)"
            guard let own = mine[entry.name] else {
                lines.append("\(name): missing on \(here)")
                continue
            }
            let ownType = own.attributes.mode & UInt32(S_IFMT)
            let theirType = entry.attributes.mode & UInt32(S_IFMT)
            if ownType != theirType {
                lines.append("\(name): \(typeName(ownType)) on \(here), \(typeName(theirType)) on \(there)")
                continue
            }
            if own.symlinkTarget != entry.symlinkTarget {
                lines.append("\(name): symbolic link targets differ")
            }
            if own.rdev != entry.rdev {
                lines.append("\(name): device numbers differ")
            }
            let isDirectory = theirType == UInt32(S_IFDIR)
            if !isDirectory {
                lines += attributeDifferences(own.attributes, entry.attributes, what: name, here: here, there: there,
                                              compareSize: theirType == UInt32(S_IFREG))
            }
        }
        for (name, _) in mine where !theirNames.contains(name) {
            lines.append(prefix + "\(name): only on \(here)")
        }
        return lines
    }

    private static func attributeDifferences(_ mine: EntryAttributes, _ theirs: EntryAttributes, what: String,
                                             here: String, there: String, compareSize: Bool) -> [String] {
        var lines: [String] = []
        if mine.mode != theirs.mode {
            lines.append("\(what): mode \(String(mine.mode & 0o7777, radix: 8)) on \(here), \(String(theirs.mode & 0o7777, radix: 8)) on \(there)")
        }
        if mine.uid != theirs.uid || mine.gid != theirs.gid {
            lines.append("\(what): owner \(mine.uid):\(mine.gid) on \(here), \(theirs.uid):\(theirs.gid) on \(there)")
        }
        if compareSize && mine.size != theirs.size {
            lines.append("\(what): size \(mine.size) on \(here), \(theirs.size) on \(there)")
        }
        if mine.xattrs != theirs.xattrs {
            lines.append("\(what): extended attributes differ")
        }
        return lines
    }

    private static func typeName(_ type: UInt32) -> String {
        switch mode_t(type) {
        case S_IFREG: return "a file"
        case S_IFDIR: return "a directory"
        case S_IFLNK: return "a symbolic link"
        case S_IFIFO: return "a fifo"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "type \(type)"
        }
    }
}

/// Walks a copy for `mirror verify`: every directory's listing (parents first), and every
/// regular file once, open for reading.
public enum CopyWalk {
    public static func walk(root rootFD: Int32, module: UInt16,
                            directory visitDirectory: (DirectoryManifest) throws -> Void,
                            file visitFile: (RelativePath, Int32) throws -> Void) throws {
        var queue: [(fd: Int32, path: RelativePath?)] = [(try sys { fcntl(rootFD, F_DUPFD_CLOEXEC, 0) }, nil)]
        defer { for pending in queue { close(pending.fd) } }
        var seenFiles = Set<UInt64>()
        while !queue.isEmpty {
            let (fd, path) = queue.removeFirst()
            defer { close(fd) }
            let listed = try DirectoryListing.entries(of: fd)
            try visitDirectory(DirectoryManifest(module: module, path: path, attributes: try DirectoryListing.attributes(of: fd),
                                                 part: 0, isLast: true, entries: listed.map(\.entry)))
            for entry in listed {
                let childPath = path.map { RelativePath(bytes: $0.bytes + [UInt8(ascii: "/")] + entry.entry.name.bytes) }
                    ?? RelativePath(bytes: entry.entry.name.bytes)
                guard let childPath else { continue }
                if entry.isDirectory {
                    let child = openat(fd, entry.nameCString, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if child >= 0 { queue.append((child, childPath)) }
                } else if entry.isRegularFile, seenFiles.insert(entry.ino).inserted {
                    let file = openat(fd, entry.nameCString, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                    guard file >= 0 else { continue }
                    defer { close(file) }
                    try visitFile(childPath, file)
                }
            }
        }
    }
}
