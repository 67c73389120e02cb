import Glibc
import ReplFS
import ReplProtocol

/// Why one replicated operation failed on this copy: the errno for the `nack`, and a sentence
/// for the log naming the operation and what went wrong.
public struct ApplyError: ErrnoCarrying, Equatable, CustomStringConvertible {
    /// The failing system call's errno; `ESTALE` for a node id that is not bound here,
    /// `EINVAL` for a message that is not an operation.
    public let code: Int32
    /// The operation, e.g. `write node 7`.
    public let operation: String
    /// What went wrong, e.g. `No such file or directory (errno 2)`.
    public let reason: String

    /// An error with its errno, the operation it ends, and why.
    public init(code: Int32, operation: String, reason: String) {
        self.code = code
        self.operation = operation
        self.reason = reason
    }

    public var description: String { "\(operation): \(reason)" }
}

/// A message named a node id that was never bound here, was forgotten, or was unbound because a
/// resync removed or replaced its file.
struct UnknownNode: ErrnoCarrying, CustomStringConvertible {
    let node: NodeRef
    /// A resync manifest removed or replaced the node's file, so the id was dropped.
    var unboundByResync = false

    var code: Int32 { ESTALE }

    var description: String {
        if unboundByResync {
            return "\(node) was unbound: a resync removed or replaced its file on this copy (errno \(ESTALE))"
        }
        return "\(node) is not bound on this copy (never created or bound, or already forgotten) (errno \(ESTALE))"
    }
}

/// An operation refused before any system call, with the errno the primary's own call gives (or
/// would give): a write to a directory or device node, a symlink's xattrs, a message that is not an operation.
struct RefusedOperation: ErrnoCarrying, CustomStringConvertible {
    let code: Int32
    let explanation: String

    var description: String { "\(explanation) (errno \(code))" }
}

/// A failed step of a larger operation (one entry of a manifest, one call of a removal), with the
/// errno of what failed: e.g. `mknodat 'p': Operation not permitted (errno 1)`.
struct StepFailure: ErrnoCarrying, CustomStringConvertible {
    let code: Int32
    let step: String
    let reason: String

    var description: String { "\(step): \(reason)" }
}

/// Runs `body`; what it throws becomes a ``StepFailure`` naming `step`, with the same errno.
@discardableResult
func during<T>(_ step: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch {
        throw StepFailure(code: errnoCode(of: error), step: step(), reason: "\(error)")
    }
}

extension ApplyError {
    /// The one mapping from what an operation threw to the errno sent back.
    init(_ error: Error, operation: String) {
        switch error {
        case let unknown as UnknownNode:
            self.init(code: ESTALE, operation: operation, reason: unknown.description)
        case let refusal as RefusedOperation:
            self.init(code: refusal.code, operation: operation, reason: refusal.description)
        default:
            self.init(code: errnoCode(of: error), operation: operation, reason: "\(error)")
        }
    }
}
