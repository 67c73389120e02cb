import CLinux
import Glibc
import ReplApply
import ReplProtocol
import XCTest

/// Failures come back as the errno the primary's own system call gave, with a description
/// for the log; a bad message never crashes the applier.
final class ErrorTests: XCTestCase {
    func testUnknownNodeIsStaleAndSaysWhichNode() throws {
        let pair = try MirrorPair("unknown")
        let stranger = NodeRef(999)
        let messages: [Message] = [
            .write(Write(module: 0, node: stranger, offset: 0, data: [1, 2, 3])),
            .bind(Bind(module: 0, node: NodeRef(5), parent: stranger, name: FileName("x")!)),
            .mkdir(Mkdir(module: 0, parent: stranger, name: FileName("x")!, node: NodeRef(6), mode: 0o755, uid: 0, gid: 0)),
            .rename(Rename(module: 0, parent: .root, name: FileName("a")!, newParent: stranger, newName: FileName("b")!, flags: 0)),
            .setAttributes(SetAttributes(module: 0, node: stranger, mode: 0o600)),
            .fsync(Fsync(module: 0, node: stranger, dataOnly: true)),
            .forget(Forget(module: 0, node: stranger)),
        ]
        for message in messages {
            XCTAssertThrowsError(try pair.applier.apply(message), "\(message.type)") { error in
                let failure = error as? ApplyError
                XCTAssertEqual(failure?.code, ESTALE)
                XCTAssert(failure?.description.contains("node 999 is not bound") ?? false, "\(error)")
            }
        }
    }

    /// EEXIST, ENOENT, ENOTEMPTY, ENOTDIR, EISDIR, EPERM... as the direct calls on the primary gave them.
    func testNamespaceErrorsMatchTheDirectCalls() throws {
        let pair = try MirrorPair("errors")
        let expectations: [(Operation, Int32)] = [
            (.mkdir("d", mode: 0o755, uid: 0, gid: 0), 0), (.mkdir("d", mode: 0o755, uid: 0, gid: 0), EEXIST),
            (.create("d/f", mode: 0o644, uid: 0, gid: 0, exclusive: true), 0),
            (.create("d/f", mode: 0o644, uid: 0, gid: 0, exclusive: true), EEXIST),
            (.symlink(target: "x", "d/f", uid: 0, gid: 0), EEXIST), (.mknod("d/f", mode: S_IFIFO | 0o600, rdev: 0), EEXIST),
            (.unlink("missing"), ENOENT), (.rmdir("missing"), ENOENT), (.rmdir("d"), ENOTEMPTY), (.unlink("d"), EISDIR),
            (.rmdir("d/f"), ENOTDIR), (.rename("missing", "x", flags: 0), ENOENT), (.rename("d", "d/sub", flags: 0), EINVAL),
            (.create("g", mode: 0o644, uid: 0, gid: 0, exclusive: true), 0),
            (.rename("g", "d/f", flags: clinux_RENAME_NOREPLACE), EEXIST), (.rename("g", "d", flags: 0), EISDIR),
            (.link("d", "d2"), EPERM), (.link("g", "d/f"), EEXIST),
            (.setxattr("g", name: "user.k", value: "v", flags: Int32(XATTR_REPLACE)), ENODATA),
            (.removexattr("g", name: "user.k"), ENODATA),
            (.setxattr("g", name: "user.k", value: "v", flags: 0), 0),
            (.setxattr("g", name: "user.k", value: "v", flags: Int32(XATTR_CREATE)), EEXIST),
            (.symlink(target: "g", "s", uid: 0, gid: 0), 0), (.setxattr("s", name: "user.k", value: "v", flags: 0), EPERM),
        ]
        for (operation, expected) in expectations {
            let step = pair.primary.perform(operation)
            XCTAssertEqual(step.errno, expected, "primary: \(operation)")
            for bind in step.binds { XCTAssertEqual(pair.apply(bind), 0, "bind before \(operation)") }
            let message = try XCTUnwrap(step.operation, "\(operation) replicates")
            XCTAssertEqual(pair.apply(message), expected, "replica: \(operation)")
        }
        let differences = try pair.treeDifferences()
        XCTAssert(differences.isEmpty, differences.joined(separator: "\n"))
    }

    /// Messages the primary should never send are refused without touching anything.
    func testImpossibleMessagesAreRefused() throws {
        let pair = try MirrorPair("refused")
        for operation: Operation in [
            .mkdir("d", mode: 0o755, uid: 0, gid: 0), .mknod("p", mode: S_IFIFO | 0o600, rdev: 0),
            .create("f", mode: 0o644, uid: 0, gid: 0, exclusive: true),
        ] {
            XCTAssertNil(pair.replicate(operation))
        }
        let (directory, fifo, file) = (NodeRef(2), NodeRef(3), NodeRef(4))
        let cases: [(Message, Int32)] = [
            (.write(Write(module: 0, node: directory, offset: 0, data: [1])), EISDIR),
            (.write(Write(module: 0, node: fifo, offset: 0, data: [1])), EINVAL),
            (.fallocate(Fallocate(module: 0, node: fifo, mode: 0, offset: 0, length: 10)), EINVAL),
            (.write(Write(module: 0, node: file, offset: UInt64.max, data: [1])), EFBIG),
            (.setAttributes(SetAttributes(module: 0, node: file, size: UInt64.max)), EFBIG),
            (.bind(Bind(module: 0, node: .root, parent: directory, name: FileName("x")!)), EINVAL),
            (.ping(token: 1), EINVAL), (.ack(Ack(sequence: 1)), EINVAL),
        ]
        for (message, expected) in cases {
            XCTAssertEqual(pair.apply(message), expected, "\(message.type)")
        }
        XCTAssertEqual(pair.apply(.forget(Forget(module: 0, node: .root))), 0, "forgetting the root changes nothing")
        XCTAssertEqual(pair.apply(.write(Write(module: 0, node: file, offset: 0, data: [7]))), 0, "still working")
    }
}
