import CLinux
import Foundation
import Glibc
import ReplFS
import ReplProtocol

/// `regionChecksumsRequest`: answered with this copy's digests, never applied.
extension ReplicaApplier {
    /// The reply to `request` (the frame `requestSequence`): this copy's digests of exactly
    /// those requested regions whose digest differs from the requester's, so the requester
    /// sends those regions; `fileSize` is this copy's size.
    ///
    /// A region's digest covers the bytes the requester hashed: the region, cut at the
    /// requester's `fileSize`. Bytes beyond the end of this copy count as zeros (what they
    /// will read as once `resyncFile` gives the file the requester's size), so holes and zeros
    /// at the end of a file that grew on the requester do not travel. A missing file (the path or a directory on it does not exist) is answered
    /// with no digests and `fileSize` 0. The file is opened read-only, without following a
    /// symbolic link anywhere on the path and without updating its access time; a path to
    /// anything but a regular file is refused (`EINVAL`, or `ENOTDIR` for a symbolic link or
    /// file on the way). Throws ``ApplyError``.
    public func answer(_ request: RegionChecksums, requestSequence: UInt64) throws -> Message {
        do {
            let checksums = try differingRegions(request)
            return .regionChecksumsReply(RegionChecksumsReply(requestSequence: requestSequence, checksums: checksums))
        } catch {
            throw ApplyError(error, operation: "region checksums of '\(request.path)' (request \(requestSequence))")
        }
    }

    private func differingRegions(_ request: RegionChecksums) throws -> RegionChecksums {
        var reply = RegionChecksums(module: request.module, path: request.path, fileSize: 0,
                                    regionSize: request.regionSize, digests: [])
        guard let (fd, size) = try openForChecksums(request.path).map({ ($0.fd, $0.size) }) else { return reply }
        defer { close(fd) }
        reply.fileSize = size
        let regionSize = UInt64(request.regionSize)
        var buffer = [UInt8](repeating: 0, count: Int(min(regionSize, max(request.fileSize, 1))))
        for requested in request.digests {
            let (offset, overflow) = requested.index.multipliedReportingOverflow(by: regionSize)
            // The span the requester hashed; empty for a region beyond its end.
            let span = overflow || offset >= request.fileSize ? 0 : Int(min(regionSize, request.fileSize - offset))
            if buffer.count < span { buffer = [UInt8](repeating: 0, count: span) }
            let count = span == 0 || offset >= size ? 0 : try readRegion(fd, at: offset, length: min(span, Int(size - offset)),
                                                                            into: &buffer)
            for index in count..<span { buffer[index] = 0 }
            let digest = ContentDigest(hashing: buffer[..<span])
            if digest != requested.digest { reply.digests.append(RegionDigest(index: requested.index, digest: digest)) }
        }
        return reply
    }

    /// A read-only descriptor of the regular file at `path` and its size; nil if it does not exist.
    private func openForChecksums(_ path: RelativePath) throws -> (fd: Int32, size: UInt64)? {
        do {
            let (dir, name) = try openParent(of: path)
            defer { dir.close() }
            let (fd, st) = try openRegularFile(name, in: dir.fd, flags: O_RDONLY | clinux_O_NOATIME)
            return (fd, UInt64(st.st_size))
        } catch where errnoCode(of: error) == ENOENT {
            return nil
        }
    }

    /// Reads up to `length` bytes at `offset` (fewer at the end of the file); the count read.
    private func readRegion(_ fd: Int32, at offset: UInt64, length: Int, into buffer: inout [UInt8]) throws -> Int {
        if buffer.count < length { buffer = [UInt8](repeating: 0, count: length) }
        let start = try fileOffset(offset)
        return try buffer.withUnsafeMutableBytes { bytes in
            var done = 0
            while done < length {
                let count = try sys { pread(fd, bytes.baseAddress! + done, length - done, start + off_t(done)) }
                if count == 0 { break }
                done += count
            }
            return done
        }
    }
}
