/// `create`: a regular file `name` in `parent`, known from now on as `node`; `flags` are the
/// open(2) flags the application used (`O_EXCL`...), `mode` includes the file type bits.
public struct Create: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var parent: NodeRef
    public var name: FileName
    public var node: NodeRef
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var flags: UInt32

    public init(module: UInt16, parent: NodeRef, name: FileName, node: NodeRef,
                mode: UInt32, uid: UInt32, gid: UInt32, flags: UInt32) {
        self.module = module
        self.parent = parent
        self.name = name
        self.node = node
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.flags = flags
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(parent)
        writer.append(name)
        writer.append(node)
        writer.append(mode)
        writer.append(uid)
        writer.append(gid)
        writer.append(flags)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        parent = try reader.readNode("parent")
        name = try reader.readName("name")
        node = try reader.readNode("node")
        mode = try reader.read(UInt32.self, "mode")
        uid = try reader.read(UInt32.self, "uid")
        gid = try reader.read(UInt32.self, "gid")
        flags = try reader.read(UInt32.self, "flags")
    }
}

/// `mknod`: a device, FIFO or socket `name` in `parent` (type in `mode`), known as `node`.
public struct Mknod: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var parent: NodeRef
    public var name: FileName
    public var node: NodeRef
    public var mode: UInt32
    public var rdev: UInt64
    public var uid: UInt32
    public var gid: UInt32

    public init(module: UInt16, parent: NodeRef, name: FileName, node: NodeRef,
                mode: UInt32, rdev: UInt64, uid: UInt32, gid: UInt32) {
        self.module = module
        self.parent = parent
        self.name = name
        self.node = node
        self.mode = mode
        self.rdev = rdev
        self.uid = uid
        self.gid = gid
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(parent)
        writer.append(name)
        writer.append(node)
        writer.append(mode)
        writer.append(rdev)
        writer.append(uid)
        writer.append(gid)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        parent = try reader.readNode("parent")
        name = try reader.readName("name")
        node = try reader.readNode("node")
        mode = try reader.read(UInt32.self, "mode")
        rdev = try reader.read(UInt64.self, "rdev")
        uid = try reader.read(UInt32.self, "uid")
        gid = try reader.read(UInt32.self, "gid")
    }
}

/// `mkdir`: a directory `name` in `parent`, known as `node`.
public struct Mkdir: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var parent: NodeRef
    public var name: FileName
    public var node: NodeRef
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32

    public init(module: UInt16, parent: NodeRef, name: FileName, node: NodeRef,
                mode: UInt32, uid: UInt32, gid: UInt32) {
        self.module = module
        self.parent = parent
        self.name = name
        self.node = node
        self.mode = mode
        self.uid = uid
        self.gid = gid
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(parent)
        writer.append(name)
        writer.append(node)
        writer.append(mode)
        writer.append(uid)
        writer.append(gid)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        parent = try reader.readNode("parent")
        name = try reader.readName("name")
        node = try reader.readNode("node")
        mode = try reader.read(UInt32.self, "mode")
        uid = try reader.read(UInt32.self, "uid")
        gid = try reader.read(UInt32.self, "gid")
    }
}

/// `symlink`: a symbolic link `name` in `parent` pointing to `target`, known as `node`.
public struct Symlink: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var parent: NodeRef
    public var name: FileName
    public var node: NodeRef
    public var target: SymlinkTarget
    public var uid: UInt32
    public var gid: UInt32

    public init(module: UInt16, parent: NodeRef, name: FileName, node: NodeRef,
                target: SymlinkTarget, uid: UInt32, gid: UInt32) {
        self.module = module
        self.parent = parent
        self.name = name
        self.node = node
        self.target = target
        self.uid = uid
        self.gid = gid
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(parent)
        writer.append(name)
        writer.append(node)
        writer.append(target)
        writer.append(uid)
        writer.append(gid)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        parent = try reader.readNode("parent")
        name = try reader.readName("name")
        node = try reader.readNode("node")
        target = try reader.readSymlinkTarget("target")
        uid = try reader.read(UInt32.self, "uid")
        gid = try reader.read(UInt32.self, "gid")
    }
}

/// `link`: a new hard link `newName` in `newParent` to the existing `node`.
public struct Link: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var node: NodeRef
    public var newParent: NodeRef
    public var newName: FileName

    public init(module: UInt16, node: NodeRef, newParent: NodeRef, newName: FileName) {
        self.module = module
        self.node = node
        self.newParent = newParent
        self.newName = newName
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(node)
        writer.append(newParent)
        writer.append(newName)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        node = try reader.readNode("node")
        newParent = try reader.readNode("new parent")
        newName = try reader.readName("new name")
    }
}

/// `unlink` and `rmdir`: remove the entry `name` of `parent` (the node stays known until `forget`,
/// as an unlinked file stays open).
public struct RemoveEntry: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var parent: NodeRef
    public var name: FileName

    public init(module: UInt16, parent: NodeRef, name: FileName) {
        self.module = module
        self.parent = parent
        self.name = name
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(parent)
        writer.append(name)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        parent = try reader.readNode("parent")
        name = try reader.readName("name")
    }
}

/// `rename`: renameat2(2) of `name` in `parent` to `newName` in `newParent`, with `flags`
/// (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`...).
public struct Rename: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var parent: NodeRef
    public var name: FileName
    public var newParent: NodeRef
    public var newName: FileName
    public var flags: UInt32

    public init(module: UInt16, parent: NodeRef, name: FileName, newParent: NodeRef, newName: FileName, flags: UInt32) {
        self.module = module
        self.parent = parent
        self.name = name
        self.newParent = newParent
        self.newName = newName
        self.flags = flags
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(parent)
        writer.append(name)
        writer.append(newParent)
        writer.append(newName)
        writer.append(flags)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        parent = try reader.readNode("parent")
        name = try reader.readName("name")
        newParent = try reader.readNode("new parent")
        newName = try reader.readName("new name")
        flags = try reader.read(UInt32.self, "flags")
    }
}
