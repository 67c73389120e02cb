import CLinux
import Glibc
import ReplProtocol

/// One entry of a directory as the resync source reads it: what goes into the listing, plus
/// what the walk needs (inode number, type).
struct ListedEntry {
    let entry: ManifestEntry
    let ino: UInt64
    let nameCString: [CChar]

    var mode: UInt32 { entry.attributes.mode }
    var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    var isRegularFile: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
}

/// Reads directories and attributes of the source's copy, relative to `O_PATH` descriptors.
enum DirectoryListing {
    /// The entries of the directory open at `dirFD` (an `O_PATH` descriptor), sorted by name;
    /// entries that vanish while being read are left out.
    static func entries(of dirFD: Int32) throws -> [ListedEntry] {
        let readable = try sys { openat(dirFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard let stream = fdopendir(readable) else {
            let error = FSError.last
            close(readable)
            throw error
        }
        defer { closedir(stream) }
        var names: [[UInt8]] = []
        while let raw = readdir(stream) {
            let name = withUnsafeBytes(of: raw.pointee.d_name) { buffer -> [UInt8] in
                Array(buffer.prefix { $0 != 0 })
            }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        var listed: [ListedEntry] = []
        for bytes in names.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            guard let name = FileName(bytes: bytes) else { continue }
            let cName = bytes.map { CChar(bitPattern: $0) } + [0]
            var st = stat()
            guard fstatat(dirFD, cName, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            var target: SymlinkTarget?
            if st.st_mode & S_IFMT == S_IFLNK {
                guard let read = readLink(dirFD, cName) else { continue }
                target = read
            }
            let xattrs = st.st_mode & S_IFMT == S_IFLNK ? [] : extendedAttributes(dirFD, name: cName)
            let isMultiLinkFile = st.st_mode & S_IFMT == S_IFREG && st.st_nlink > 1
            let entry = ManifestEntry(name: name, attributes: attributes(st, xattrs: xattrs), rdev: UInt64(st.st_rdev),
                                      linkKey: isMultiLinkFile ? UInt64(st.st_ino) : 0, symlinkTarget: target)
            listed.append(ListedEntry(entry: entry, ino: UInt64(st.st_ino), nameCString: cName))
        }
        return listed
    }

    /// The attributes of the file open at `fd` (any descriptor, `O_PATH` included).
    static func attributes(of fd: Int32) throws -> EntryAttributes {
        var st = stat()
        try sys { fstatat(fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        let xattrs = st.st_mode & S_IFMT == S_IFLNK ? [] : extendedAttributes(fd, name: nil)
        return attributes(st, xattrs: xattrs)
    }

    private static func attributes(_ st: stat, xattrs: [EntryAttributes.Xattr]) -> EntryAttributes {
        EntryAttributes(mode: UInt32(st.st_mode), uid: st.st_uid, gid: st.st_gid,
                        size: st.st_mode & S_IFMT == S_IFREG ? UInt64(st.st_size) : 0,
                        accessTime: Timestamp(st.st_atim), modificationTime: Timestamp(st.st_mtim), xattrs: xattrs)
    }

    private static func readLink(_ dirFD: Int32, _ name: [CChar]) -> SymlinkTarget? {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = buffer.withUnsafeMutableBytes { raw in
            readlinkat(dirFD, name, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
        }
        guard count > 0 else { return nil }
        return SymlinkTarget(bytes: buffer[..<count])
    }

    /// The extended attributes of entry `name` of `fd` (nil: `fd` itself), sorted by name;
    /// unreadable ones are left out (the listing carries what can be read).
    private static func extendedAttributes(_ fd: Int32, name: [CChar]?) -> [EntryAttributes.Xattr] {
        var path = Array("/proc/self/fd/\(fd)".utf8CString.dropLast())
        if let name { path += [CChar(UInt8(ascii: "/"))] + name.dropLast() }
        path.append(0)
        let size = llistxattr(path, nil, 0)
        guard size > 0 else { return [] }
        var list = [CChar](repeating: 0, count: size)
        let listed = llistxattr(path, &list, size)
        guard listed > 0 else { return [] }
        var result: [EntryAttributes.Xattr] = []
        for rawName in list[..<listed].split(separator: 0) {
            let cName = Array(rawName) + [0]
            guard let xattrName = XattrName(bytes: rawName.map { UInt8(bitPattern: $0) }) else { continue }
            let length = lgetxattr(path, cName, nil, 0)
            guard length >= 0 else { continue }
            var value = [UInt8](repeating: 0, count: length)
            let read = value.withUnsafeMutableBytes { lgetxattr(path, cName, $0.baseAddress, length) }
            guard read >= 0 else { continue }
            result.append(EntryAttributes.Xattr(name: xattrName, value: Array(value[..<read])))
        }
        return result.sorted { $0.name.bytes.lexicographicallyPrecedes($1.name.bytes) }
    }
}
