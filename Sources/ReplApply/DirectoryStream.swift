import Glibc
import ReplFS
import ReplProtocol

/// The names of one directory, read with `readdir` (`.` and `..` left out); owns its descriptor.
final class DirectoryStream {
    private let stream: OpaquePointer
    /// The directory's descriptor (open for reading), for `*at` calls on its entries.
    let fd: Int32

    /// Opens `name` of `parent` (nil: `parent` itself) for reading, refusing a symbolic link
    /// (`O_NOFOLLOW`) or a non-directory (`O_DIRECTORY`, so nothing else is ever opened).
    init(_ name: FileName?, in parent: Int32) throws {
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
        let fd: Int32
        if let name {
            fd = try name.withCString { name in try sys { openat(parent, name, flags) } }
        } else {
            fd = try sys { openat(parent, ".", flags) }
        }
        guard let stream = fdopendir(fd) else {
            let error = FSError.last
            close(fd)
            throw error
        }
        self.stream = stream
        self.fd = fd
    }

    deinit { closedir(stream) }

    /// The next name, or nil at the end.
    func next() throws -> FileName? {
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw FSError.last }
                return nil
            }
            let bytes = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: UInt8.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    Array(UnsafeBufferPointer(start: $0, count: strlen(UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))))
                }
            }
            if let name = FileName(bytes: bytes) { return name }
            // `.` and `..`, the only names FileName refuses that a directory can hold.
        }
    }

    /// Every remaining name.
    func allNames() throws -> [FileName] {
        var names: [FileName] = []
        while let name = try next() { names.append(name) }
        return names
    }
}
