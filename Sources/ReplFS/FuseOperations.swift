import CFuse3
import CLinux
import Glibc

// The libfuse low-level operation table: each handler resolves its arguments, calls
// ReplFileSystem, and replies. Handlers cannot capture context (they are C function pointers);
// the filesystem is reached through the session's userdata.

@inline(__always)
private func filesystem(_ req: fuse_req_t?) -> ReplFileSystem {
    Unmanaged<ReplFileSystem>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

/// Runs `body`; any thrown error becomes the reply's errno.
@inline(__always)
private func respond(_ req: fuse_req_t?, _ body: () throws -> Void) {
    do {
        try body()
    } catch {
        fuse_reply_err(req, errnoCode(of: error))
    }
}

@inline(__always)
private func replyEntry(_ req: fuse_req_t?, _ body: () throws -> fuse_entry_param) {
    respond(req) {
        var entry = try body()
        fuse_reply_entry(req, &entry)
    }
}

@inline(__always)
private func replyOK(_ req: fuse_req_t?, _ body: () throws -> Void) {
    respond(req) {
        try body()
        fuse_reply_err(req, 0)
    }
}

@inline(__always)
private func caller(_ req: fuse_req_t?) -> Caller {
    let ctx = fuse_req_ctx(req)!.pointee
    return Caller(uid: ctx.uid, gid: ctx.gid)
}

@inline(__always)
private func fileHandle(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> Int32 {
    Int32(truncatingIfNeeded: fi!.pointee.fh)
}

private func directory(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> DirectoryStream {
    Unmanaged<DirectoryStream>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi!.pointee.fh))!).takeUnretainedValue()
}

/// Open flags for the kernel. No FLUSH on close(): every write was applied before it returned,
/// so close() has nothing left to report, and one round trip per close is saved.
@inline(__always)
private func configure(_ fi: UnsafeMutablePointer<fuse_file_info>, fileHandle fd: Int32, options: ReplFSOptions) {
    fi.pointee.fh = UInt64(fd)
    fi.pointee.keep_cache = options.keepCache ? 1 : 0
    fi.pointee.noflush = 1
}

/// A one-buffer vector describing `size` bytes of descriptor `fd` at `position`.
@inline(__always)
private func descriptorBuffer(fd: Int32, position: off_t, size: Int) -> fuse_bufvec {
    var vector = fuse_bufvec()
    vector.count = 1
    vector.buf.size = size
    vector.buf.flags = fuse_buf_flags(rawValue: FUSE_BUF_IS_FD.rawValue | FUSE_BUF_FD_SEEK.rawValue)
    vector.buf.fd = fd
    vector.buf.pos = position
    return vector
}

private func connectionInit(_ userdata: UnsafeMutableRawPointer?, _ conn: UnsafeMutablePointer<fuse_conn_info>?) {
    let fs = Unmanaged<ReplFileSystem>.fromOpaque(userdata!).takeUnretainedValue()
    guard let conn else { return }
    let capable = conn.pointee.capable
    var want = conn.pointee.want
    // Every write must reach ReplFS before write() returns (replication depends on it).
    want &= ~UInt32(FUSE_CAP_WRITEBACK_CACHE)
    // ReplFS runs as root: let the kernel clear set-ID bits on write and chown, as it does natively.
    want &= ~UInt32(FUSE_CAP_HANDLE_KILLPRIV)
    // All changes pass through this mount, so cached pages stay valid across opens.
    if fs.options.keepCache { want &= ~UInt32(FUSE_CAP_AUTO_INVAL_DATA) }
    // Read replies are spliced from the backing file to /dev/fuse. Write requests are not spliced
    // in: measured slower here than one read() into memory (and replication needs the bytes in
    // memory anyway).
    want &= ~UInt32(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_MOVE)
    if fs.options.splice {
        want |= capable & UInt32(FUSE_CAP_SPLICE_WRITE)
    } else {
        want &= ~UInt32(FUSE_CAP_SPLICE_WRITE)
    }
    want |= capable & UInt32(FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_READDIRPLUS)
    conn.pointee.want = want
    conn.pointee.max_write = 1 << 20
    conn.pointee.time_gran = 1
}

/// Builds the operation table. Locks (POSIX and flock) are deliberately absent: the kernel then
/// handles them itself, which is what applications on this node need.
func makeOperationTable() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = { userdata, conn in connectionInit(userdata, conn) }

    ops.lookup = { req, parent, name in
        replyEntry(req) { try filesystem(req).lookup(parent: parent, name: name!) }
    }
    ops.forget = { req, node, count in
        filesystem(req).forget(node, count: count)
        fuse_reply_none(req)
    }
    ops.forget_multi = { req, count, forgets in
        let fs = filesystem(req)
        for item in UnsafeBufferPointer(start: forgets, count: count) {
            fs.forget(item.ino, count: item.nlookup)
        }
        fuse_reply_none(req)
    }
    ops.getattr = { req, node, _ in
        respond(req) {
            var st = try filesystem(req).getattr(node)
            fuse_reply_attr(req, &st, filesystem(req).options.cacheTimeout)
        }
    }
    ops.setattr = { req, node, attr, toSet, fi in
        respond(req) {
            let attr = attr!.pointee
            let toSet = Int32(toSet)
            var change = ReplFileSystem.AttributeChange()
            if toSet & FUSE_SET_ATTR_MODE != 0 { change.mode = attr.st_mode }
            if toSet & FUSE_SET_ATTR_UID != 0 { change.uid = attr.st_uid }
            if toSet & FUSE_SET_ATTR_GID != 0 { change.gid = attr.st_gid }
            if toSet & FUSE_SET_ATTR_SIZE != 0 { change.size = attr.st_size }
            if toSet & FUSE_SET_ATTR_ATIME_NOW != 0 {
                change.atime = timespec(tv_sec: 0, tv_nsec: clinux_UTIME_NOW)
            } else if toSet & FUSE_SET_ATTR_ATIME != 0 {
                change.atime = attr.st_atim
            }
            if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 {
                change.mtime = timespec(tv_sec: 0, tv_nsec: clinux_UTIME_NOW)
            } else if toSet & FUSE_SET_ATTR_MTIME != 0 {
                change.mtime = attr.st_mtim
            }
            let fs = filesystem(req)
            var st = try fs.setattr(node, change, fileHandle: fi.map { _ in fileHandle(fi) })
            fuse_reply_attr(req, &st, fs.options.cacheTimeout)
        }
    }
    ops.readlink = { req, node in
        respond(req) {
            let target = try filesystem(req).readlink(node)
            fuse_reply_readlink(req, target)
        }
    }
    ops.mknod = { req, parent, name, mode, rdev in
        replyEntry(req) { try filesystem(req).mknod(parent: parent, name: name!, mode: mode, rdev: rdev, caller: caller(req)) }
    }
    ops.mkdir = { req, parent, name, mode in
        replyEntry(req) { try filesystem(req).mkdir(parent: parent, name: name!, mode: mode, caller: caller(req)) }
    }
    ops.symlink = { req, target, parent, name in
        replyEntry(req) { try filesystem(req).symlink(target: target!, parent: parent, name: name!, caller: caller(req)) }
    }
    ops.link = { req, node, newParent, newName in
        replyEntry(req) { try filesystem(req).link(node, newParent: newParent, newName: newName!) }
    }
    ops.unlink = { req, parent, name in
        replyOK(req) { try filesystem(req).unlink(parent: parent, name: name!) }
    }
    ops.rmdir = { req, parent, name in
        replyOK(req) { try filesystem(req).rmdir(parent: parent, name: name!) }
    }
    ops.rename = { req, parent, name, newParent, newName, flags in
        replyOK(req) { try filesystem(req).rename(parent: parent, name: name!, newParent: newParent, newName: newName!, flags: flags) }
    }

    ops.open = { req, node, fi in
        respond(req) {
            let fs = filesystem(req)
            let fd = try fs.open(node, flags: fi!.pointee.flags)
            configure(fi!, fileHandle: fd, options: fs.options)
            fuse_reply_open(req, fi)
        }
    }
    ops.create = { req, parent, name, mode, fi in
        respond(req) {
            let fs = filesystem(req)
            var (entry, fd) = try fs.create(parent: parent, name: name!, mode: mode, flags: fi!.pointee.flags, caller: caller(req))
            configure(fi!, fileHandle: fd, options: fs.options)
            if fuse_reply_create(req, &entry, fi) != 0 {
                // The kernel gave up on this request: undo the lookup and the open.
                fs.forget(entry.ino, count: 1)
                fs.release(fileHandle: fd)
            }
        }
    }
    ops.read = { req, _, size, offset, fi in
        var source = descriptorBuffer(fd: fileHandle(fi), position: offset, size: size)
        fuse_reply_data(req, &source, FUSE_BUF_SPLICE_MOVE)
    }
    ops.write_buf = { req, node, data, offset, fi in
        let fs = filesystem(req)
        if fs.replicator != nil {
            replicatedWrite(req, fs, node: node, data: data, offset: offset, fi: fi)
            return
        }
        var destination = descriptorBuffer(fd: fileHandle(fi), position: offset, size: fuse_buf_size(data))
        let written = fuse_buf_copy(&destination, data, fuse_buf_copy_flags(rawValue: 0))
        if written < 0 {
            fuse_reply_err(req, Int32(-written))
        } else {
            fuse_reply_write(req, Int(written))
        }
    }
    ops.release = { req, _, fi in
        filesystem(req).release(fileHandle: fileHandle(fi))
        fuse_reply_err(req, 0)
    }
    ops.fsync = { req, node, datasync, fi in
        replyOK(req) { try filesystem(req).fsync(node, fileHandle: fileHandle(fi), dataOnly: datasync != 0) }
    }
    ops.fallocate = { req, node, mode, offset, length, fi in
        replyOK(req) { try filesystem(req).fallocate(node, fileHandle: fileHandle(fi), mode: mode, offset: offset, length: length) }
    }
    ops.lseek = { req, _, offset, whence, fi in
        respond(req) {
            let position = try filesystem(req).lseek(fileHandle: fileHandle(fi), offset: offset, whence: whence)
            fuse_reply_lseek(req, position)
        }
    }
    ops.copy_file_range = { req, _, offsetIn, fiIn, _, offsetOut, fiOut, length, flags in
        respond(req) {
            let copied = try filesystem(req).copyFileRange(
                from: fileHandle(fiIn), at: offsetIn, to: fileHandle(fiOut), at: offsetOut,
                length: length, flags: UInt32(truncatingIfNeeded: flags))
            fuse_reply_write(req, copied)
        }
    }
    ops.statfs = { req, node in
        respond(req) {
            var st = try filesystem(req).statfs(node)
            fuse_reply_statfs(req, &st)
        }
    }

    ops.opendir = { req, node, fi in
        respond(req) {
            let stream = try filesystem(req).opendir(node)
            fi!.pointee.fh = UInt64(UInt(bitPattern: Unmanaged.passRetained(stream).toOpaque()))
            fuse_reply_open(req, fi)
        }
    }
    ops.readdir = { req, node, size, offset, fi in
        readDirectory(req, node: node, size: size, offset: offset, fi: fi, plus: false)
    }
    ops.readdirplus = { req, node, size, offset, fi in
        readDirectory(req, node: node, size: size, offset: offset, fi: fi, plus: true)
    }
    ops.releasedir = { req, _, fi in
        Unmanaged<DirectoryStream>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi!.pointee.fh))!).release()
        fuse_reply_err(req, 0)
    }
    ops.fsyncdir = { req, node, datasync, fi in
        replyOK(req) { try filesystem(req).fsync(node, fileHandle: directory(fi).fd, dataOnly: datasync != 0) }
    }

    ops.setxattr = { req, node, name, value, size, flags in
        replyOK(req) { try filesystem(req).setxattr(node, name: name!, value: value, size: size, flags: flags) }
    }
    ops.getxattr = { req, node, name, size in
        replyXattr(req, size: size) { buffer in try filesystem(req).getxattr(node, name: name!, into: buffer) }
    }
    ops.listxattr = { req, node, size in
        replyXattr(req, size: size) { buffer in try filesystem(req).listxattr(node, into: buffer) }
    }
    ops.removexattr = { req, node, name in
        replyOK(req) { try filesystem(req).removexattr(node, name: name!) }
    }
    return ops
}

/// A write with a replicator: the request's bytes are copied once into memory, written locally
/// and framed for the peer from that same buffer.
private func replicatedWrite(_ req: fuse_req_t?, _ fs: ReplFileSystem, node: fuse_ino_t, data: UnsafeMutablePointer<fuse_bufvec>?,
                             offset: off_t, fi: UnsafeMutablePointer<fuse_file_info>?) {
    let size = fuse_buf_size(data)
    guard let buffer = malloc(max(size, 1)) else {
        fuse_reply_err(req, ENOMEM)
        return
    }
    defer { free(buffer) }
    var memory = fuse_bufvec()
    memory.count = 1
    memory.buf.size = size
    memory.buf.mem = buffer
    let copied = fuse_buf_copy(&memory, data, fuse_buf_copy_flags(rawValue: 0))
    guard copied >= 0 else {
        fuse_reply_err(req, Int32(-copied))
        return
    }
    respond(req) {
        let written = try fs.write(node, fileHandle: fileHandle(fi), data: UnsafeRawBufferPointer(start: buffer, count: copied),
                                   offset: offset, appending: fi!.pointee.flags & O_APPEND != 0)
        fuse_reply_write(req, written)
    }
}

/// getxattr/listxattr: with size 0 the kernel asks for the length only.
private func replyXattr(_ req: fuse_req_t?, size: Int, _ read: (UnsafeMutableRawBufferPointer) throws -> Int) {
    respond(req) {
        if size == 0 {
            fuse_reply_xattr(req, try read(UnsafeMutableRawBufferPointer(start: nil, count: 0)))
            return
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        let length = try read(buffer)
        fuse_reply_buf(req, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), length)
    }
}

private let direntNameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

/// Fills one readdir(plus) reply from the directory stream, resuming at `offset`.
private func readDirectory(_ req: fuse_req_t?, node: fuse_ino_t, size: Int, offset: off_t,
                           fi: UnsafeMutablePointer<fuse_file_info>?, plus: Bool) {
    let fs = filesystem(req)
    let stream = directory(fi)
    let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
    defer { buffer.deallocate() }
    var used = 0
    var nextOffset = offset
    do {
        while let entry = try stream.entry(at: nextOffset) {
            let name = UnsafeRawPointer(entry).advanced(by: direntNameOffset).assumingMemoryBound(to: CChar.self)
            let entryOffset = off_t(entry.pointee.d_off)
            let isDot = name[0] == 0x2E && (name[1] == 0 || (name[1] == 0x2E && name[2] == 0))
            var length: Int
            if plus && !isDot {
                var param: fuse_entry_param
                do {
                    param = try fs.lookup(parent: node, name: name)
                } catch let error as FSError where error.code == ENOENT {
                    // Removed since it was listed: skip it, as a plain directory would.
                    stream.advance()
                    nextOffset = entryOffset
                    continue
                }
                length = fuse_add_direntry_plus(req, buffer + used, size - used, name, &param, entryOffset)
                if length > size - used {
                    fs.forget(param.ino, count: 1)
                    break
                }
            } else {
                var st = stat()
                st.st_ino = entry.pointee.d_ino
                st.st_mode = mode_t(entry.pointee.d_type) << 12
                if plus {
                    var param = fuse_entry_param()
                    param.attr = st
                    length = fuse_add_direntry_plus(req, buffer + used, size - used, name, &param, entryOffset)
                } else {
                    length = fuse_add_direntry(req, buffer + used, size - used, name, &st, entryOffset)
                }
                if length > size - used { break }
            }
            used += length
            stream.advance()
            nextOffset = entryOffset
        }
    } catch {
        if used == 0 {
            fuse_reply_err(req, errnoCode(of: error))
            return
        }
    }
    fuse_reply_buf(req, buffer, used)
}
