/// `bind`: the peer opens and remembers, as `node`, the entry `name` of directory `parent`
/// (a file the primary knew before replication started or before a reconnection).
public struct Bind: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var node: NodeRef
    public var parent: NodeRef
    public var name: FileName

    public init(module: UInt16, node: NodeRef, parent: NodeRef, name: FileName) {
        self.module = module
        self.node = node
        self.parent = parent
        self.name = name
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(node)
        writer.append(parent)
        writer.append(name)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        node = try reader.readNode("node")
        parent = try reader.readNode("parent")
        name = try reader.readName("name")
    }
}

/// `forget`: the primary no longer uses `node`; the peer closes what it holds for it.
public struct Forget: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var node: NodeRef

    public init(module: UInt16, node: NodeRef) {
        self.module = module
        self.node = node
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(node)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        node = try reader.readNode("node")
    }
}

/// `write`: `data` at `offset` of `node`. Decoded, `data` is a slice of the received frame.
public struct Write: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var node: NodeRef
    public var offset: UInt64
    public var data: ArraySlice<UInt8>

    public init(module: UInt16, node: NodeRef, offset: UInt64, data: ArraySlice<UInt8>) {
        self.module = module
        self.node = node
        self.offset = offset
        self.data = data
    }

    /// Bytes before the data: module, node, offset, data length.
    static let fieldsLength = 2 + 8 + 8 + 4

    static func encode<Bytes: Collection>(module: UInt16, node: NodeRef, offset: UInt64, data: Bytes,
                                          into writer: inout ByteWriter) where Bytes.Element == UInt8 {
        writer.append(module)
        writer.append(node)
        writer.append(offset)
        writer.appendLongBytes(data)
    }

    func encode(into writer: inout ByteWriter) {
        Write.encode(module: module, node: node, offset: offset, data: data, into: &writer)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        node = try reader.readNode("node")
        offset = try reader.read(UInt64.self, "offset")
        data = try reader.readLongBytes("data", limit: WireFormat.maximumDataLength)
    }
}

/// `fallocate`: fallocate(2) on `node` with `mode` (`FALLOC_FL_*`: keep size, punch hole...).
public struct Fallocate: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var node: NodeRef
    public var mode: UInt32
    public var offset: UInt64
    public var length: UInt64

    public init(module: UInt16, node: NodeRef, mode: UInt32, offset: UInt64, length: UInt64) {
        self.module = module
        self.node = node
        self.mode = mode
        self.offset = offset
        self.length = length
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(node)
        writer.append(mode)
        writer.append(offset)
        writer.append(length)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        node = try reader.readNode("node")
        mode = try reader.read(UInt32.self, "mode")
        offset = try reader.read(UInt64.self, "offset")
        length = try reader.read(UInt64.self, "length")
    }
}

/// `fsync`: the peer makes `node` durable (fdatasync(2) if `dataOnly`) before acknowledging.
public struct Fsync: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var node: NodeRef
    public var dataOnly: Bool

    public init(module: UInt16, node: NodeRef, dataOnly: Bool) {
        self.module = module
        self.node = node
        self.dataOnly = dataOnly
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(node)
        writer.append(dataOnly)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        node = try reader.readNode("node")
        dataOnly = try reader.readBool("data only")
    }
}
