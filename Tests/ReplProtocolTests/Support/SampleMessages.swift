@testable import ReplProtocol

/// Names and values used across the tests; unwrapped here so tests read plainly.
func name(_ string: String) -> FileName { FileName(string)! }
func path(_ string: String) -> RelativePath { RelativePath(string)! }
func nonce(_ byte: UInt8) -> HandshakeNonce { HandshakeNonce(bytes: [UInt8](repeating: byte, count: 32))! }

/// At least one message of every type, with edge values (non-UTF-8 names, maximal integers,
/// empty data), so a round trip covers every field of every encoding.
func sampleMessages() -> [Message] {
    let data = ArraySlice((0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) })
    let oddName = FileName(bytes: [0xFF, 0xFE, 0x41])!
    let digests = (0..<5).map { RegionDigest(index: UInt64($0 * 3), digest: ContentDigest(hashing: [UInt8($0)])) }
    let checksums = RegionChecksums(module: 2, path: path("db/base/1234"), fileSize: 5 << 20,
                                    regionSize: 1 << 20, digests: digests)
    let generations = WireGenerations(current: .max, bitmap: 7, history: [5, 3], upToDate: true)
    let status = ModuleStatus(module: 1, generations: generations, serving: true, aloneSince: -7, dirty: [
        DirtyFile(path: path("db/base/1234"), regions: .whole),
        DirtyFile(path: path("pg_wal/0001"), regions: .some([0, 2, .max])),
    ])
    let directory = EntryAttributes(mode: 0o40755, uid: 0, gid: 0, size: 0, accessTime: Timestamp(seconds: 1, nanoseconds: 2),
                                    modificationTime: Timestamp(seconds: 3, nanoseconds: 4), xattrs: [])
    let file = EntryAttributes(mode: 0o100640, uid: 26, gid: 26, size: 1 << 40, accessTime: Timestamp(seconds: 1, nanoseconds: 2),
                               modificationTime: Timestamp(seconds: 3, nanoseconds: 4),
                               xattrs: [.init(name: XattrName("user.a")!, value: [1, 2]), .init(name: XattrName("user.b")!, value: [])])
    let entries = [
        ManifestEntry(name: oddName, attributes: file, linkKey: 99),
        ManifestEntry(name: name("link"), attributes: EntryAttributes(mode: 0o120777, uid: 0, gid: 0, size: 0,
                      accessTime: file.accessTime, modificationTime: file.modificationTime, xattrs: []),
                      symlinkTarget: SymlinkTarget("../x")!),
        ManifestEntry(name: name("null"), attributes: directory, rdev: 0x103),
    ]
    let hello = Hello(clusterName: "prod", nodeName: "node1", nonce: nonce(7), modules: ["pg", "files"])
    return [
        .hello(hello),
        .helloReply(Hello(clusterName: "prod", nodeName: "nœud-2", nonce: nonce(9), modules: [])),
        .proof(Proof(code: [UInt8](repeating: 0xAB, count: 32))),
        .accept,
        .refuse(Refuse(reason: .wrongCluster, detail: "node 'x' belongs to cluster 'y'")),
        .ack(Ack(sequence: .max)),
        .nack(Nack(sequence: 42, errno: -5)),
        .ping(token: 1),
        .pong(token: .max),
        .bind(Bind(module: 0, node: NodeRef(17), parent: .root, name: oddName)),
        .forget(Forget(module: 1, node: NodeRef(.max))),
        .write(Write(module: 0, node: NodeRef(17), offset: 1 << 40, data: data)),
        .write(Write(module: 0, node: NodeRef(17), offset: 0, data: [])),
        .create(Create(module: 0, parent: .root, name: name("a.txt"), node: NodeRef(2),
                       mode: 0o100644, uid: 1000, gid: 100, flags: 0o301)),
        .mknod(Mknod(module: 0, parent: .root, name: name("fifo"), node: NodeRef(3),
                     mode: 0o010600, rdev: 0x0103, uid: 0, gid: 0)),
        .mkdir(Mkdir(module: 0, parent: .root, name: name("dir"), node: NodeRef(4), mode: 0o40755, uid: 1, gid: 2)),
        .symlink(Symlink(module: 0, parent: NodeRef(4), name: name("link"), node: NodeRef(5),
                         target: SymlinkTarget("../a.txt")!, uid: 3, gid: 4)),
        .link(Link(module: 0, node: NodeRef(2), newParent: NodeRef(4), newName: name("hard"))),
        .unlink(RemoveEntry(module: 0, parent: .root, name: name("a.txt"))),
        .rmdir(RemoveEntry(module: 0, parent: .root, name: name("dir"))),
        .rename(Rename(module: 0, parent: .root, name: name("x"), newParent: NodeRef(4), newName: name("y"), flags: 2)),
        .setAttributes(SetAttributes(module: 0, node: NodeRef(2))),
        .setAttributes(SetAttributes(module: 0, node: NodeRef(2), mode: 0o600, uid: 7, gid: 8, size: 1 << 33,
                                     accessTime: .now,
                                     modificationTime: .set(Timestamp(seconds: -1, nanoseconds: 999_999_999)))),
        .fallocate(Fallocate(module: 0, node: NodeRef(2), mode: 3, offset: 4096, length: 8192)),
        .setXattr(SetXattr(module: 0, node: NodeRef(2), name: XattrName("user.comment")!, value: [0, 1, 2], flags: 1)),
        .removeXattr(RemoveXattr(module: 0, node: NodeRef(2), name: XattrName("user.comment")!)),
        .fsync(Fsync(module: 0, node: NodeRef(2), dataOnly: true)),
        .resyncRegion(ResyncRegion(module: 1, target: .node(NodeRef(2)), offset: 1 << 20, data: data)),
        .resyncRegion(ResyncRegion(module: 1, target: .path(path("db/base/1234")), offset: 0, data: data)),
        .regionChecksumsRequest(checksums),
        .regionChecksumsReply(RegionChecksumsReply(requestSequence: 9, checksums: checksums)),
        .moduleStatus(status),
        .moduleStatus(ModuleStatus(module: 0, generations: WireGenerations(current: 0, bitmap: 0, history: [], upToDate: false),
                                   serving: false, dirty: [], dirtyListComplete: false)),
        .moduleStatusReply(ModuleStatusReply(requestSequence: 3, status: status)),
        .resyncBegin(ResyncBegin(module: 1, method: .checksum, source: generations)),
        .resyncDirectory(DirectoryManifest(module: 1, path: nil, attributes: directory, part: 0, isLast: false, entries: [])),
        .resyncDirectory(DirectoryManifest(module: 1, path: path("db/base"), attributes: directory, part: 3, isLast: true,
                                           entries: entries)),
        .resyncFile(ResyncFile(module: 1, path: path("db/base/1234"), attributes: file)),
        .resyncEnd(ResyncEnd(module: 1, generations: generations)),
        .verifyDirectory(DirectoryManifest(module: 0, path: path("db"), attributes: directory, part: 0, isLast: true, entries: entries)),
        .verifyReply(VerifyReply(requestSequence: 12, differences: ["db/x: missing on node2", "é"])),
        .controlRequest(ControlEnvelope(requestSequence: 0, body: Array(#"{"verb":"stop","module":"AM"}"#.utf8))),
        .controlReply(ControlEnvelope(requestSequence: 13, body: Array(#"{"ok":true}"#.utf8))),
    ]
}
