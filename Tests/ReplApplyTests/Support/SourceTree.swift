import CLinux
import Foundation
import Glibc
import ReplProtocol
import TestSupport

/// A test stand-in for a resync's source: walks a directory tree and says what a source would
/// send for it (directory manifests, region checksum requests, regions, file times). The real
/// walker is ReplFS's; this one only reads plain directories with path-based calls.
struct SourceTree {
    let root: String

    func path(_ relative: String) -> String { relative.isEmpty ? root : root + "/" + relative }

    /// One listing per directory, in parts of at most `maximumEntries` entries, parents before
    /// their children (breadth first). Directories' own attributes are read before their entries.
    func manifests(maximumEntries: Int = DirectoryManifest.maximumEntries) throws -> [DirectoryManifest] {
        var manifests: [DirectoryManifest] = []
        var directories = [""]
        var index = 0
        while index < directories.count {
            let relative = directories[index]
            index += 1
            let own = try attributes(relative, try status(relative))
            var entries: [ManifestEntry] = []
            for name in try FileManager.default.contentsOfDirectory(atPath: path(relative)).sorted() {
                let child = relative.isEmpty ? name : relative + "/" + name
                let st = try status(child)
                let type = st.st_mode & S_IFMT
                entries.append(ManifestEntry(
                    name: FileName(name)!, attributes: try attributes(child, st),
                    rdev: type == S_IFCHR || type == S_IFBLK ? UInt64(st.st_rdev) : 0,
                    linkKey: type != S_IFDIR && st.st_nlink > 1 ? UInt64(st.st_ino) : 0,
                    symlinkTarget: type == S_IFLNK ? SymlinkTarget(bytes: try readlinkBytes(child)) : nil))
                if type == S_IFDIR { directories.append(child) }
            }
            let parts = stride(from: 0, to: max(entries.count, 1), by: maximumEntries).map {
                Array(entries[$0..<min($0 + maximumEntries, entries.count)])
            }
            for (part, slice) in parts.enumerated() {
                manifests.append(DirectoryManifest(module: 0, path: relative.isEmpty ? nil : RelativePath(relative)!,
                                                   attributes: own, part: UInt32(part), isLast: part == parts.count - 1,
                                                   entries: slice))
            }
        }
        return manifests
    }

    /// Relative paths of the regular files, one per inode (the first in walk order).
    func regularFiles() throws -> [String] {
        var files: [String] = []
        var seen: Set<UInt64> = []
        var directories = [""]
        var index = 0
        while index < directories.count {
            let relative = directories[index]
            index += 1
            for name in try FileManager.default.contentsOfDirectory(atPath: path(relative)).sorted() {
                let child = relative.isEmpty ? name : relative + "/" + name
                let st = try status(child)
                switch st.st_mode & S_IFMT {
                case S_IFDIR: directories.append(child)
                case S_IFREG: if seen.insert(UInt64(st.st_ino)).inserted { files.append(child) }
                default: break
                }
            }
        }
        return files
    }

    /// The digests of every region of the file, as a checksum request.
    func checksumRequest(_ relative: String, regionSize: Int) throws -> RegionChecksums {
        let content = try contents(relative)
        let digests = stride(from: 0, to: content.count, by: regionSize).enumerated().map { index, start in
            RegionDigest(index: UInt64(index), digest: ContentDigest(hashing: content[start..<min(start + regionSize, content.count)]))
        }
        return RegionChecksums(module: 0, path: RelativePath(relative)!, fileSize: UInt64(content.count),
                               regionSize: UInt32(regionSize), digests: digests)
    }

    /// The regions `indexes` of the file as a source sends them: its data segments with their
    /// bytes, its holes as regions of zeros (which the target punches).
    func regions(_ relative: String, indexes: [UInt64], regionSize: Int) throws -> [ResyncRegion] {
        let content = try contents(relative)
        let segments = try dataSegments(relative, size: content.count)
        var regions: [ResyncRegion] = []
        for index in indexes {
            let start = Int(index) * regionSize
            let end = min(start + regionSize, content.count)
            var position = start
            for segment in segments where segment.upperBound > start && segment.lowerBound < end {
                let dataStart = max(segment.lowerBound, start)
                if dataStart > position { regions.append(zeros(relative, position, dataStart - position)) }
                let dataEnd = min(segment.upperBound, end)
                regions.append(ResyncRegion(module: 0, target: .path(RelativePath(relative)!), offset: UInt64(dataStart),
                                            data: content[dataStart..<dataEnd]))
                position = dataEnd
            }
            if position < end { regions.append(zeros(relative, position, end - position)) }
        }
        return regions
    }

    /// A regular file's size and attributes, as the source sends them after its regions.
    func file(_ relative: String) throws -> ResyncFile {
        ResyncFile(module: 0, path: RelativePath(relative)!, attributes: try attributes(relative, try status(relative)))
    }

    func attributes(_ relative: String, _ st: stat) throws -> EntryAttributes {
        let type = st.st_mode & S_IFMT
        return EntryAttributes(mode: UInt32(st.st_mode), uid: st.st_uid, gid: st.st_gid,
                               size: type == S_IFREG ? UInt64(st.st_size) : 0,
                               accessTime: Timestamp(st.st_atim), modificationTime: Timestamp(st.st_mtim),
                               xattrs: type == S_IFLNK ? [] : try xattrs(relative))
    }

    func status(_ relative: String) throws -> stat {
        var st = stat()
        guard lstat(path(relative), &st) == 0 else { throw TestFailure("lstat \(path(relative)): \(String(cString: strerror(errno)))") }
        return st
    }

    private func zeros(_ relative: String, _ offset: Int, _ count: Int) -> ResyncRegion {
        ResyncRegion(module: 0, target: .path(RelativePath(relative)!), offset: UInt64(offset),
                     data: ArraySlice(repeating: 0, count: count))
    }

    private func contents(_ relative: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path(relative)) else { throw TestFailure("cannot read \(path(relative))") }
        return Array(data)
    }

    private func dataSegments(_ relative: String, size: Int) throws -> [Range<Int>] {
        let fd = open(path(relative), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TestFailure("open \(path(relative))") }
        defer { close(fd) }
        var segments: [Range<Int>] = []
        var position = 0
        while position < size {
            let data = lseek(fd, off_t(position), clinux_SEEK_DATA)
            if data < 0 { break }
            let hole = min(Int(lseek(fd, data, clinux_SEEK_HOLE)), size)
            segments.append(Int(data)..<hole)
            position = hole
        }
        return segments
    }

    private func readlinkBytes(_ relative: String) throws -> [UInt8] {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path(relative), &buffer, 4096)
        guard count > 0 else { throw TestFailure("readlink \(path(relative))") }
        return buffer[0..<count].map { UInt8(bitPattern: $0) }
    }

    /// Every extended attribute, sorted by name.
    private func xattrs(_ relative: String) throws -> [EntryAttributes.Xattr] {
        var names = [CChar](repeating: 0, count: 65536)
        let count = llistxattr(path(relative), &names, names.count)
        guard count >= 0 else { throw TestFailure("llistxattr \(path(relative))") }
        return try names[0..<count].split(separator: 0).map { Array($0.map { UInt8(bitPattern: $0) }) }.sorted { $0.lexicographicallyPrecedes($1) }
            .map { name in
                var value = [UInt8](repeating: 0, count: 65536)
                let length = lgetxattr(path(relative), String(decoding: name, as: UTF8.self), &value, value.count)
                guard length >= 0 else { throw TestFailure("lgetxattr \(path(relative))") }
                return EntryAttributes.Xattr(name: XattrName(bytes: name)!, value: Array(value[0..<length]))
            }
    }
}

extension Timestamp {
    init(_ time: timespec) {
        self.init(seconds: Int64(time.tv_sec), nanoseconds: UInt32(time.tv_nsec))
    }
}
