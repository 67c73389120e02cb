import Glibc

/// A failed operation, carrying the errno that the application will see.
///
/// This is the only error type that reaches `fuse_reply_err`: system calls throw it through
/// ``sys(_:)``, and ``errnoCode(of:)`` maps anything else to `EIO`. Errno values pass through
/// unchanged, so an application sees on ReplFS exactly the error the directory underneath gave.
public struct FSError: ErrnoCarrying, Equatable, CustomStringConvertible {
    /// The errno value (`ENOENT`, `EEXIST`, ...).
    public let code: Int32

    public init(_ code: Int32) { self.code = code }

    /// The calling thread's current `errno`.
    public static var last: FSError { FSError(errno) }

    public var description: String { "\(String(cString: strerror(code))) (errno \(code))" }
}

/// An error that knows the errno to report for it (``FSError``, and the errors of code built on
/// ReplFS, such as the secondary's applier).
public protocol ErrnoCarrying: Error {
    /// The errno value to report.
    var code: Int32 { get }
}

/// The one place that maps any error to the errno returned to the kernel (or to the primary).
public func errnoCode(of error: Error) -> Int32 {
    (error as? ErrnoCarrying)?.code ?? EIO
}

/// Runs a system call that returns -1 and sets `errno` on failure; retries on `EINTR`.
@inline(__always)
@discardableResult
public func sys<T: BinaryInteger>(_ call: () -> T) throws -> T {
    while true {
        let result = call()
        if result >= 0 { return result }
        let code = errno
        if code != EINTR { throw FSError(code) }
    }
}
