/// One operator command sent to the node daemon over the control socket, as one line of JSON:
///
///     {"verb":"boot","module":"AM","arguments":["off"],"yes":false,"host":"node2"}
///
/// `module` and `host` are omitted when nil. A request missing `arguments` or `yes` is read with
/// `[]` and `false`, so a hand-written request needs only its verb.
public struct ControlRequest: Codable, Equatable, Sendable {
    /// What to do: `status`, `start`, `stop`, `restart`, `swap`, `prim`, `second`, `boot`, `errd`,
    /// `checker`, `log` or `verify` (the daemon refuses any other).
    public var verb: String
    /// The module it applies to (`-m NAME`); nil for verbs that take every module.
    public var module: String?
    /// The verb's own words, in order: `["off"]` for `boot -m AM off`, `["disable", "pg-port"]` for
    /// `checker -m AM disable pg-port`.
    public var arguments: [String]
    /// For `second` only: the operator confirmed (`--yes`) that this node's divergent changes are
    /// discarded. Without it the daemon changes nothing and answers, in `message`, what would be
    /// discarded (`ok` true), or why `second` is refused anyway (`ok` false).
    public var yes: Bool
    /// The node the operator aims at (`-H NODE`, or `all` for both); nil for the node that serves the socket.
    public var host: String?

    public init(verb: String, module: String? = nil, arguments: [String] = [], yes: Bool = false, host: String? = nil) {
        self.verb = verb
        self.module = module
        self.arguments = arguments
        self.yes = yes
        self.host = host
    }

    private enum CodingKeys: String, CodingKey {
        case verb, module, arguments, yes, host
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        verb = try container.decode(String.self, forKey: .verb)
        module = try container.decodeIfPresent(String.self, forKey: .module)
        arguments = try container.decodeIfPresent([String].self, forKey: .arguments) ?? []
        yes = try container.decodeIfPresent(Bool.self, forKey: .yes) ?? false
        host = try container.decodeIfPresent(String.self, forKey: .host)
    }
}
