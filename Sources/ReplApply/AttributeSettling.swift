import CLinux
import Glibc
import ReplFS
import ReplProtocol

/// Giving one file, directory or other entry the attributes a resync lists for it.
extension ReplicaApplier {
    /// Sets on the entry behind `fd` (an `O_PATH | O_NOFOLLOW` descriptor; `status` its status
    /// now) each attribute that differs, in an order where none undoes another:
    ///
    /// 1. owner (a chown clears set-ID bits and file capabilities);
    /// 2. size, for regular files (a truncation drops capabilities and changes the mtime);
    /// 3. extended attributes in the namespaces ``Xattrs/isManaged(_:)`` names: listed ones set,
    ///    others removed (an ACL changes the group bits of the mode);
    /// 4. permission bits, set-ID and sticky bits included;
    /// 5. access and modification times, last.
    ///
    /// Symbolic links get owner and times only: their mode is fixed, and ReplFS shows them
    /// without extended attributes (it refuses to set any), so none are set or removed.
    func settleAttributes(_ attributes: EntryAttributes, of fd: Int32, status: stat) throws {
        var st = status
        let type = st.st_mode & S_IFMT
        var changed = false
        if st.st_uid != attributes.uid || st.st_gid != attributes.gid {
            try during("chown to \(attributes.uid):\(attributes.gid)") {
                try sys { fchownat(fd, "", attributes.uid, attributes.gid, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
            }
            changed = true
        }
        if type == S_IFREG, UInt64(st.st_size) != attributes.size {
            let size = try fileOffset(attributes.size)
            try during("truncate to \(attributes.size) bytes") {
                let writable = try withProcPath(fd) { path in try sys { open(path, O_WRONLY | O_CLOEXEC) } }
                defer { close(writable) }
                try sys { ftruncate(writable, size) }
            }
            changed = true
        }
        if type != S_IFLNK {
            changed = try settleXattrs(attributes.xattrs, of: fd) || changed
        }
        if changed {
            try sys { fstatat(fd, "", &st, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
        }
        let mode = mode_t(attributes.mode & 0o7777)
        if type != S_IFLNK, st.st_mode & 0o7777 != mode {
            try during("chmod to \(String(mode, radix: 8))") {
                try withProcPath(fd) { path in try sys { chmod(path, mode) } }
            }
        }
        if !st.st_atim.equals(attributes.accessTime) || !st.st_mtim.equals(attributes.modificationTime) {
            var times = [timespec(.set(attributes.accessTime)), timespec(.set(attributes.modificationTime))]
            try during("set times") {
                try sys { utimensat(fd, "", &times, clinux_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
            }
        }
    }

    /// Sets the listed attributes whose value differs and removes managed ones not listed;
    /// true if anything changed.
    private func settleXattrs(_ listed: [EntryAttributes.Xattr], of fd: Int32) throws -> Bool {
        try withProcPath(fd) { path in
            let present = try during("list xattrs") { try Xattrs.names(path: path) }
            var changed = false
            let wanted = Set(listed.map(\.name.bytes))
            for name in present where Xattrs.isManaged(name) && !wanted.contains(name) {
                try during("remove xattr '\(text(name))'") { try Xattrs.remove(path: path, name: name) }
                changed = true
            }
            let presentNames = Set(present)
            for xattr in listed {
                let name = xattr.name.bytes
                if presentNames.contains(name),
                   try during("get xattr '\(text(name))'", { try Xattrs.value(path: path, name: name) }) == xattr.value {
                    continue
                }
                try during("set xattr '\(text(name))'") { try Xattrs.set(path: path, name: name, value: xattr.value) }
                changed = true
            }
            return changed
        }
    }
}

private func text(_ name: [UInt8]) -> String { String(decoding: name, as: UTF8.self) }

extension timespec {
    func equals(_ time: Timestamp) -> Bool {
        Int64(tv_sec) == time.seconds && Int64(tv_nsec) == Int64(time.nanoseconds)
    }
}
