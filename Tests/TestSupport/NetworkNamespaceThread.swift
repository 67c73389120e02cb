import Foundation
import Glibc

/// Runs `body` on a new thread that first enters the network namespace at `path` with setns(2),
/// and returns its result. Only that thread changes namespace (setns with CLONE_NEWNET acts on the
/// calling thread), and it ends with `body`, so no thread of the test process or of a pool is ever
/// left in a lab namespace. Sockets opened inside `body` stay in that namespace for good, whichever
/// thread uses them later: that is how the tests listen and connect inside the lab.
///
/// Chosen over running a helper under `nsenter --net` for the API tests because the manager is then
/// called directly (typed errors, no parsing of output); the `mirror vip` verbs, which the failover
/// through the command line uses, are run under nsenter.
public func inNetworkNamespace<T>(_ path: String, _ body: @escaping () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        defer { done.signal() }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            box.result = .failure(TestFailure("open \(path): \(String(cString: strerror(errno)))"))
            return
        }
        defer { close(fd) }
        guard setns(fd, cloneNewNet) == 0 else {
            box.result = .failure(TestFailure("setns(\(path), CLONE_NEWNET): \(String(cString: strerror(errno)))"))
            return
        }
        box.result = Result { try body() }
    }
    thread.start()
    done.wait()
    return try box.result!.get()
}

private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}

private let cloneNewNet: Int32 = 0x4000_0000  // CLONE_NEWNET

/// setns(2), which Swift's Glibc module hides behind _GNU_SOURCE.
private typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
private let setns: SetNamespace = {
    guard let symbol = dlsym(nil, "setns") else { fatalError("libc has no setns") }
    return unsafeBitCast(symbol, to: SetNamespace.self)
}()
