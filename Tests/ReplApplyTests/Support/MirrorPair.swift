import CLinux
import Glibc
import ReplApply
import ReplProtocol
import TestSupport

/// A primary directory changed by a ``PrimaryModel`` and a replica directory changed only by a
/// ``ReplicaApplier`` fed the primary's messages.
final class MirrorPair {
    private let scratch: ScratchDirectory
    let primary: PrimaryModel
    let applier: ReplicaApplier
    let primaryRoot: String
    let replicaRoot: String
    /// Operations that replicated a message, and how many of those failed alike on both sides.
    private(set) var replicatedCount = 0
    private(set) var failedAlikeCount = 0

    init(_ label: String, maximumOpenFiles: Int = 256) throws {
        scratch = try ScratchDirectory(label)
        primaryRoot = try scratch.sub("primary")
        replicaRoot = try scratch.sub("replica")
        primary = try PrimaryModel(root: primaryRoot)
        let rootFD = open(replicaRoot, clinux_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw TestFailure("open \(replicaRoot)") }
        applier = try ReplicaApplier(rootFD: rootFD, maximumOpenFiles: maximumOpenFiles)
    }

    /// The errno the replica gave for `message`, 0 on success.
    @discardableResult
    func apply(_ message: Message) -> Int32 {
        do {
            try applier.apply(message)
            return 0
        } catch let error as ApplyError {
            return error.code
        } catch {
            return -1
        }
    }

    /// Performs `operation` on the primary and applies what it replicates; a description of the
    /// first mismatch (a bind failing, or an errno different from the primary's), or nil.
    func replicate(_ operation: Operation) -> String? {
        let step = primary.perform(operation)
        for bind in step.binds {
            let code = apply(bind)
            if code != 0 { return "\(operation): \(bind.type) failed on the replica with errno \(code)" }
        }
        guard let message = step.operation else { return nil }
        let code = apply(message)
        replicatedCount += 1
        if code != 0, code == step.errno { failedAlikeCount += 1 }
        if code != step.errno {
            return "\(operation): primary gave errno \(step.errno), replica \(code) (\(String(cString: strerror(code))))"
        }
        return nil
    }

    /// Forgets every node the primary knows, as when the application exits.
    func forgetAll() {
        for message in primary.forgetAll() { apply(message) }
    }

    func treeDifferences(includingTimes: Bool = false) throws -> [String] {
        try TreeSnapshot(of: primaryRoot, includingTimes: includingTimes)
            .differences(from: TreeSnapshot(of: replicaRoot, includingTimes: includingTimes))
    }
}
