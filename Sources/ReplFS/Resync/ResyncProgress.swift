/// How far a resync is, for status and log lines: bytes of file content planned and sent.
public struct ResyncProgress: Sendable, CustomStringConvertible {
    public var pass: Int
    public var bytesSent: UInt64
    /// Grows as the walk discovers what differs; final once the walk has seen every file.
    public var bytesPlanned: UInt64
    public var filesVisited: Int
    public var elapsed: Duration

    /// Bytes per second so far.
    public var rate: Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(bytesSent) / seconds : 0
    }

    /// Seconds left at the current rate, when it can be told.
    public var secondsLeft: Double? {
        guard rate > 0, bytesPlanned >= bytesSent else { return nil }
        return Double(bytesPlanned - bytesSent) / rate
    }

    public var description: String {
        let mib = { (bytes: UInt64) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        let eta = secondsLeft.map { String(format: ", ETA %.0f s", $0) } ?? ""
        return "pass \(pass): \(mib(bytesSent)) of \(mib(bytesPlanned)) sent, \(filesVisited) files seen, "
            + String(format: "%.1f MiB/s", rate / 1_048_576) + eta
    }
}
