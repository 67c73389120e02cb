import Glibc

/// A failed operation, carrying the errno that the application will see.
///
/// This is the only error type that reaches `fuse_reply_err`: system calls throw it through
/// ``sys(_:)``, and ``errnoCode(of:)`` maps anything else to `EIO`. Errno values pass through
/// unchanged, so an application sees on ReplFS exactly the error the directory underneath gave.
public struct FSError: Error, Equatable, CustomStringConvertible {
    /// The errno value (`ENOENT`, `EEXIST`, ...).
    public let code: Int32

    public init(_ code: Int32) { self.code = code }

    /// The calling thread's current `errno`.
    public static var last: FSError { FSError(errno) }

    public var description: String { "\(String(cString: strerror(code))) (errno \(code))" }
}

/// The one place that maps any error to the errno returned to the kernel.
public func errnoCode(of error: Error) -> Int32 {
    (error as? FSError)?.code ?? EIO
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
