/// Every message of the protocol, as carried by one frame.
///
/// Operation messages name their module by its index in the hellos' module list (see ``Hello``).
public enum Message: Equatable, Sendable {
    case hello(Hello)
    case helloReply(Hello)
    case proof(Proof)
    case accept
    case refuse(Refuse)

    case ack(Ack)
    case nack(Nack)
    case ping(token: UInt64)
    case pong(token: UInt64)

    case bind(Bind)
    case forget(Forget)
    case write(Write)
    case create(Create)
    case mknod(Mknod)
    case mkdir(Mkdir)
    case symlink(Symlink)
    case link(Link)
    case unlink(RemoveEntry)
    case rmdir(RemoveEntry)
    case rename(Rename)
    case setAttributes(SetAttributes)
    case fallocate(Fallocate)
    case setXattr(SetXattr)
    case removeXattr(RemoveXattr)
    case fsync(Fsync)

    case resyncRegion(ResyncRegion)
    case regionChecksumsRequest(RegionChecksums)
    case regionChecksumsReply(RegionChecksumsReply)
    case moduleStatus(ModuleStatus)
    case moduleStatusReply(ModuleStatusReply)
    case resyncBegin(ResyncBegin)
    case resyncDirectory(DirectoryManifest)
    case resyncFile(ResyncFile)
    case resyncEnd(ResyncEnd)
    case verifyDirectory(DirectoryManifest)
    case verifyReply(VerifyReply)
    case controlRequest(ControlEnvelope)
    case controlReply(ControlEnvelope)

    /// Reads the payload of `frame`; throws if it is malformed or has bytes left over.
    public init(decoding frame: Frame) throws {
        var reader = ByteReader(frame.payload, message: frame.type)
        switch frame.type {
        case .hello: self = .hello(try Hello(from: &reader))
        case .helloReply: self = .helloReply(try Hello(from: &reader))
        case .proof: self = .proof(try Proof(from: &reader))
        case .accept: self = .accept
        case .refuse: self = .refuse(try Refuse(from: &reader))
        case .ack: self = .ack(try Ack(from: &reader))
        case .nack: self = .nack(try Nack(from: &reader))
        case .ping: self = .ping(token: try Token(from: &reader).value)
        case .pong: self = .pong(token: try Token(from: &reader).value)
        case .bind: self = .bind(try Bind(from: &reader))
        case .forget: self = .forget(try Forget(from: &reader))
        case .write: self = .write(try Write(from: &reader))
        case .create: self = .create(try Create(from: &reader))
        case .mknod: self = .mknod(try Mknod(from: &reader))
        case .mkdir: self = .mkdir(try Mkdir(from: &reader))
        case .symlink: self = .symlink(try Symlink(from: &reader))
        case .link: self = .link(try Link(from: &reader))
        case .unlink: self = .unlink(try RemoveEntry(from: &reader))
        case .rmdir: self = .rmdir(try RemoveEntry(from: &reader))
        case .rename: self = .rename(try Rename(from: &reader))
        case .setAttributes: self = .setAttributes(try SetAttributes(from: &reader))
        case .fallocate: self = .fallocate(try Fallocate(from: &reader))
        case .setXattr: self = .setXattr(try SetXattr(from: &reader))
        case .removeXattr: self = .removeXattr(try RemoveXattr(from: &reader))
        case .fsync: self = .fsync(try Fsync(from: &reader))
        case .resyncRegion: self = .resyncRegion(try ResyncRegion(from: &reader))
        case .regionChecksumsRequest: self = .regionChecksumsRequest(try RegionChecksums(from: &reader))
        case .regionChecksumsReply: self = .regionChecksumsReply(try RegionChecksumsReply(from: &reader))
        case .moduleStatus: self = .moduleStatus(try ModuleStatus(from: &reader))
        case .moduleStatusReply: self = .moduleStatusReply(try ModuleStatusReply(from: &reader))
        case .resyncBegin: self = .resyncBegin(try ResyncBegin(from: &reader))
        case .resyncDirectory: self = .resyncDirectory(try DirectoryManifest(from: &reader))
        case .resyncFile: self = .resyncFile(try ResyncFile(from: &reader))
        case .resyncEnd: self = .resyncEnd(try ResyncEnd(from: &reader))
        case .verifyDirectory: self = .verifyDirectory(try DirectoryManifest(from: &reader))
        case .verifyReply: self = .verifyReply(try VerifyReply(from: &reader))
        case .controlRequest: self = .controlRequest(try ControlEnvelope(from: &reader))
        case .controlReply: self = .controlReply(try ControlEnvelope(from: &reader))
        }
        try reader.finish()
    }

    public var type: MessageType {
        switch self {
        case .hello: return .hello
        case .helloReply: return .helloReply
        case .proof: return .proof
        case .accept: return .accept
        case .refuse: return .refuse
        case .ack: return .ack
        case .nack: return .nack
        case .ping: return .ping
        case .pong: return .pong
        case .bind: return .bind
        case .forget: return .forget
        case .write: return .write
        case .create: return .create
        case .mknod: return .mknod
        case .mkdir: return .mkdir
        case .symlink: return .symlink
        case .link: return .link
        case .unlink: return .unlink
        case .rmdir: return .rmdir
        case .rename: return .rename
        case .setAttributes: return .setAttributes
        case .fallocate: return .fallocate
        case .setXattr: return .setXattr
        case .removeXattr: return .removeXattr
        case .fsync: return .fsync
        case .resyncRegion: return .resyncRegion
        case .regionChecksumsRequest: return .regionChecksumsRequest
        case .regionChecksumsReply: return .regionChecksumsReply
        case .moduleStatus: return .moduleStatus
        case .moduleStatusReply: return .moduleStatusReply
        case .resyncBegin: return .resyncBegin
        case .resyncDirectory: return .resyncDirectory
        case .resyncFile: return .resyncFile
        case .resyncEnd: return .resyncEnd
        case .verifyDirectory: return .verifyDirectory
        case .verifyReply: return .verifyReply
        case .controlRequest: return .controlRequest
        case .controlReply: return .controlReply
        }
    }

    /// The payload's encoder; `nil` for messages without a payload.
    private var payload: PayloadCodable? {
        switch self {
        case .hello(let hello), .helloReply(let hello): return hello
        case .proof(let proof): return proof
        case .accept: return nil
        case .refuse(let refuse): return refuse
        case .ack(let ack): return ack
        case .nack(let nack): return nack
        case .ping(let token), .pong(let token): return Token(value: token)
        case .bind(let bind): return bind
        case .forget(let forget): return forget
        case .write(let write): return write
        case .create(let create): return create
        case .mknod(let mknod): return mknod
        case .mkdir(let mkdir): return mkdir
        case .symlink(let symlink): return symlink
        case .link(let link): return link
        case .unlink(let removal), .rmdir(let removal): return removal
        case .rename(let rename): return rename
        case .setAttributes(let attributes): return attributes
        case .fallocate(let fallocate): return fallocate
        case .setXattr(let setXattr): return setXattr
        case .removeXattr(let removeXattr): return removeXattr
        case .fsync(let fsync): return fsync
        case .resyncRegion(let region): return region
        case .regionChecksumsRequest(let checksums): return checksums
        case .regionChecksumsReply(let reply): return reply
        case .moduleStatus(let status): return status
        case .moduleStatusReply(let reply): return reply
        case .resyncBegin(let begin): return begin
        case .resyncDirectory(let manifest), .verifyDirectory(let manifest): return manifest
        case .resyncFile(let file): return file
        case .resyncEnd(let end): return end
        case .verifyReply(let reply): return reply
        case .controlRequest(let envelope), .controlReply(let envelope): return envelope
        }
    }

    func encodePayload(into writer: inout ByteWriter) {
        payload?.encode(into: &writer)
    }

    /// Roughly the payload's size, so the frame buffer is allocated once for large messages.
    var payloadSizeHint: Int {
        switch self {
        case .write(let write): return Write.fieldsLength + write.data.count
        case .resyncRegion(let region): return 32 + RelativePath.maximumLength + region.data.count
        case .regionChecksumsRequest(let checksums): return checksums.encodedLength
        case .regionChecksumsReply(let reply): return 8 + reply.checksums.encodedLength
        case .setXattr(let setXattr): return 512 + setXattr.value.count
        case .resyncDirectory(let manifest), .verifyDirectory(let manifest):
            return 1024 + manifest.entries.reduce(manifest.attributes.encodedLengthEstimate) { $0 + $1.encodedLengthEstimate }
        case .verifyReply(let reply): return 64 + reply.differences.reduce(0) { $0 + 4 + $1.utf8.count }
        case .controlRequest(let envelope), .controlReply(let envelope): return 16 + envelope.body.count
        case .moduleStatus(let status): return 1024 + status.dirty.count * 300
        case .moduleStatusReply(let reply): return 1024 + reply.status.dirty.count * 300
        default: return 512
        }
    }
}

/// The payload of `ping` and `pong`: a token the pong echoes.
private struct Token: PayloadCodable {
    let value: UInt64

    init(value: UInt64) { self.value = value }

    func encode(into writer: inout ByteWriter) { writer.append(value) }

    init(from reader: inout ByteReader) throws { value = try reader.read(UInt64.self, "token") }
}
