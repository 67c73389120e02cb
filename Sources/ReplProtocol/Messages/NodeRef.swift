/// A file or directory of a module, by the id the primary gave it.
///
/// Ids survive renames and unlink-while-open; the peer learns them from `create`/`mkdir`/...
/// or `bind` and drops them on `forget`. Id 1 is the module's root directory; 0 is never valid.
public struct NodeRef: Hashable, Sendable, CustomStringConvertible {
    public let id: UInt64

    /// - Precondition: `id` is not 0.
    public init(_ id: UInt64) {
        precondition(id != 0, "node id 0 is reserved")
        self.id = id
    }

    /// The module's root directory.
    public static let root = NodeRef(1)

    public var description: String { "node \(id)" }
}

extension ByteWriter {
    mutating func append(_ node: NodeRef) { append(node.id) }
}

extension ByteReader {
    mutating func readNode(_ field: String) throws -> NodeRef {
        let id = try read(UInt64.self, field)
        guard id != 0 else { throw invalid(field, "node id 0 is reserved") }
        return NodeRef(id)
    }
}
