import ReplProtocol

/// NUL-terminated views of the protocol's byte strings, for system calls.
extension FileName {
    @discardableResult
    func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try nulTerminated(bytes, body)
    }
}

extension SymlinkTarget {
    @discardableResult
    func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try nulTerminated(bytes, body)
    }
}

extension XattrName {
    @discardableResult
    func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try nulTerminated(bytes, body)
    }
}

/// Calls `body` with `bytes` followed by a NUL (names never contain NUL: ReplProtocol refuses them).
private func nulTerminated<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
    try (bytes + [0]).withUnsafeBufferPointer { buffer in
        try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
    }
}
