/// The daemon's answer to one ``ControlRequest``, as one line of JSON:
///
///     {"ok":false,"message":"","error":"unknown module 'XY' (modules: AM, DB)"}
///
/// `error`, `status` and `logFile` are omitted when nil.
public struct ControlResponse: Codable, Equatable, Sendable {
    /// The request was carried out (or, for `second` without `yes`, could be).
    public var ok: Bool
    /// What the operator reads: possibly several lines, possibly empty.
    public var message: String
    /// Why the request was refused; nil when `ok`.
    public var error: String?
    /// Both nodes' view of the modules, for `status`.
    public var status: ClusterStatusReport?
    /// For `log`: the log file on the node that answered, which `clusterctl log -f` follows.
    public var logFile: String?

    public init(ok: Bool, message: String = "", error: String? = nil, status: ClusterStatusReport? = nil, logFile: String? = nil) {
        self.ok = ok
        self.message = message
        self.error = error
        self.status = status
        self.logFile = logFile
    }

    /// A refusal: `ok` false with its reason.
    public static func refused(_ reason: String, message: String = "") -> ControlResponse {
        ControlResponse(ok: false, message: message, error: reason)
    }

    /// The `error` of the answer given to a client that is not root; ``ControlClient`` turns it
    /// into ``ControlClientError/permissionDenied(path:)``.
    public static let rootOnly = "root only"
}
