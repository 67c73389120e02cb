/// The one-byte code in a frame header that says how to read the payload.
///
/// Codes are grouped: 1-15 handshake, 16-31 stream control, 32-63 replicated operations,
/// 64-79 resynchronisation. A code never changes meaning once released.
public enum MessageType: UInt8, CaseIterable, Sendable {
    case hello = 1
    case helloReply = 2
    case proof = 3
    case accept = 4
    case refuse = 5

    case ack = 16
    case nack = 17
    case ping = 18
    case pong = 19

    case bind = 32
    case forget = 33
    case write = 34
    case create = 35
    case mknod = 36
    case mkdir = 37
    case symlink = 38
    case link = 39
    case unlink = 40
    case rmdir = 41
    case rename = 42
    case setAttributes = 43
    case fallocate = 44
    case setXattr = 45
    case removeXattr = 46
    case fsync = 47

    case resyncRegion = 64
    case regionChecksumsRequest = 65
    case regionChecksumsReply = 66
    case moduleStatus = 67
    case moduleStatusReply = 68
    case resyncBegin = 69
    case resyncDirectory = 70
    case resyncFile = 71
    case resyncEnd = 72
    case verifyDirectory = 73
    case verifyReply = 74
    case controlRequest = 75
    case controlReply = 76
}
