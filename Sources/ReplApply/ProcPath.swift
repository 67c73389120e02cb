/// `/proc/self/fd/N`: reaches the file behind an `O_PATH` descriptor where no `*at` call exists.
@discardableResult
func withProcPath<T>(_ fd: Int32, _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
    try "/proc/self/fd/\(fd)".withCString(body)
}
