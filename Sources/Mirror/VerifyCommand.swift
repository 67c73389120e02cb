import ArgumentParser
import Glibc
import Logging
import ReplFS
import ReplProtocol
import ReplTransport

/// `mirror verify --config FILE --node NAME`: compares this node's copy of the module with the
/// peer's, by listings and per-region SHA-256 digests, and reports every difference; changes
/// nothing on either node.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Compare this node's copy of the module with the peer's; report differences, change nothing.",
        discussion: """
        Run it on the primary's node while the secondary runs: it reads this node's copy (through the mount if \
        mounted), connects to the secondary's replication address with the cluster key and asks it to compare each \
        directory listing (names, types, modes, owners, sizes, extended attributes) and each file's regions by \
        SHA-256. Files being written during the run may show transient differences. Exit status: 0 identical, \
        1 differences found, 2 could not compare.
        """
    )

    @Option(name: .long, help: "The cluster file (TOML), the same on both nodes.")
    var config: String

    @Option(name: .long, help: "This node's name in the cluster file.")
    var node: String

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "mirror")
        logger.logLevel = .warning
        let plan: NodePlan
        do {
            plan = try NodePlan.load(config: config, node: node)
        } catch {
            print("verify: \(error)")
            throw ExitCode(2)
        }
        var worst: Int32 = 0
        for unit in plan.units {
            do {
                let differences = try Self.compare(unit, of: plan, logger: logger)
                for line in differences { print("\(unit.name): \(line)") }
                let summary = differences.isEmpty ? "identical" : "\(differences.count) difference(s)"
                print("verify: module \(unit.name) (\(unit.directory)): \(summary) between \(plan.nodeName) and \(plan.peerName)")
                if !differences.isEmpty { worst = max(worst, 1) }
            } catch {
                print("verify: module \(unit.name) (\(unit.directory)): cannot compare: \(error)")
                worst = 2
            }
        }
        if worst != 0 { throw ExitCode(worst) }
    }

    static func compare(_ unit: UnitPlan, of plan: NodePlan, logger: Logger) throws -> [String] {
        let rootFD = try sys { open(unit.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(rootFD) }
        var connector = ReplicationConnector(addresses: plan.peerAddresses, configuration: plan.handshake, logger: logger)
        connector.connectTimeout = .seconds(2)
        let sender = ReplicationSender(channel: try connector.connect(retryingFor: .seconds(5)),
                                       settings: .init(acknowledgementTimeout: .seconds(30)), logger: logger)
        defer { sender.close() }
        func ask(_ message: Message) throws -> Message? {
            let (outcome, reply) = sender.reply(to: try sender.send(message))
            switch outcome {
            case .applied: return reply
            case .failed(let code): throw Failure(message: "\(plan.peerName) refused \(message.type): \(FSError(code))")
            case .peerLost: throw Failure(message: "\(plan.peerName) lost: \(sender.lossReason ?? "unknown reason")")
            }
        }
        var differences: [String] = []
        let regionSize = UInt64(plan.regionSize)
        var buffer = [UInt8](repeating: 0, count: plan.regionSize)
        try CopyWalk.walk(root: rootFD, module: unit.index) { listing in
            if case .verifyReply(let reply)? = try ask(.verifyDirectory(listing)) { differences += reply.differences }
        } file: { path, fd in
            var st = stat()
            try sys { fstat(fd, &st) }
            let count = (UInt64(st.st_size) + regionSize - 1) / regionSize
            var start: UInt64 = 0
            var differing: [UInt64] = []
            repeat {
                let end = min(count, start + 32)
                var digests: [RegionDigest] = []
                for index in start..<end {
                    let read = try buffer.withUnsafeMutableBytes { raw in
                        try sys { pread(fd, raw.baseAddress, raw.count, off_t(index * regionSize)) }
                    }
                    digests.append(RegionDigest(index: index, digest: ContentDigest(hashing: buffer[..<read])))
                }
                let request = RegionChecksums(module: unit.index, path: path, fileSize: UInt64(st.st_size), regionSize: UInt32(regionSize),
                                              digests: digests)
                if case .regionChecksumsReply(let reply)? = try ask(.regionChecksumsRequest(request)) {
                    differing += reply.checksums.digests.map(\.index)
                }
                start = end
            } while start < count
            if !differing.isEmpty {
                let shown = differing.prefix(10).map(String.init).joined(separator: ", ")
                differences.append("\(path): content differs in \(differing.count) region(s) of \(regionSize) bytes (\(shown)\(differing.count > 10 ? ", ..." : ""))")
            }
        }
        return differences
    }
}
