import Foundation
import Glibc
import XCTest
import TestSupport

/// Mounting over a live directory keeps its files, and unmounting leaves them untouched.
final class MountLifecycleTests: XCTestCase {
    func testMountOverExistingDirectoryKeepsFilesAndUnmountLeavesThem() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("lifecycle")
        let dir = try scratch.sub("data")
        try "before\n".write(toFile: dir + "/old.txt", atomically: false, encoding: .utf8)
        let mount = try ReplFSMount(over: dir)
        defer { mount.stop() }
        XCTAssertEqual(try String(contentsOfFile: dir + "/old.txt", encoding: .utf8), "before\n")
        try "during\n".write(toFile: dir + "/new.txt", atomically: false, encoding: .utf8)
        XCTAssertTrue(isReplFSMounted(dir))
        mount.stop()
        XCTAssertFalse(isReplFSMounted(dir))
        XCTAssertEqual(try String(contentsOfFile: dir + "/new.txt", encoding: .utf8), "during\n")
        XCTAssertEqual(try String(contentsOfFile: dir + "/old.txt", encoding: .utf8), "before\n")
    }
}
