import CLinux
import Foundation
import Glibc
import XCTest
import TestSupport

/// The situations applications depend on, each on a real ReplFS mount.
final class NamedCaseTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private var mount: ReplFSMount!
    private var dir: String { mount.directory }

    override func setUpWithError() throws {
        try requireMountPrivileges()
        scratch = try ScratchDirectory("named")
        mount = try ReplFSMount(over: try scratch.sub("data"))
    }

    override func tearDown() {
        mount?.stop()
        mount = nil
        scratch = nil
    }

    func testUnlinkWhileOpenKeepsReadAndWriteWorking() throws {
        let fd = open(dir + "/victim", O_CREAT | O_RDWR, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(write(fd, "before", 6), 6)
        XCTAssertEqual(unlink(dir + "/victim"), 0)
        XCTAssertEqual(access(dir + "/victim", F_OK), -1)
        XCTAssertEqual(pwrite(fd, "-after", 6, 6), 6)
        var buffer = [UInt8](repeating: 0, count: 12)
        XCTAssertEqual(pread(fd, &buffer, 12, 0), 12)
        XCTAssertEqual(String(decoding: buffer, as: UTF8.self), "before-after")
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        XCTAssertEqual(st.st_nlink, 0)
        XCTAssertEqual(st.st_size, 12)
        XCTAssertEqual(fsync(fd), 0)
    }

    func testRenameOverAnOpenFile() throws {
        try "old content".write(toFile: dir + "/target", atomically: false, encoding: .utf8)
        try "new content".write(toFile: dir + "/source", atomically: false, encoding: .utf8)
        let fd = open(dir + "/target", O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(rename(dir + "/source", dir + "/target"), 0)
        var buffer = [UInt8](repeating: 0, count: 11)
        XCTAssertEqual(pread(fd, &buffer, 11, 0), 11)
        XCTAssertEqual(String(decoding: buffer, as: UTF8.self), "old content", "the open descriptor keeps the replaced file")
        XCTAssertEqual(try String(contentsOfFile: dir + "/target", encoding: .utf8), "new content")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/source"))
    }

    func testHardLinksShareOneInode() throws {
        try "shared".write(toFile: dir + "/one", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: false)
        XCTAssertEqual(link(dir + "/one", dir + "/sub/two"), 0)
        var a = stat(), b = stat()
        XCTAssertEqual(stat(dir + "/one", &a), 0)
        XCTAssertEqual(stat(dir + "/sub/two", &b), 0)
        XCTAssertEqual(a.st_ino, b.st_ino)
        XCTAssertEqual(a.st_nlink, 2)
        let fd = open(dir + "/sub/two", O_WRONLY | O_APPEND)
        XCTAssertEqual(write(fd, "+more", 5), 5)
        close(fd)
        XCTAssertEqual(try String(contentsOfFile: dir + "/one", encoding: .utf8), "shared+more")
        XCTAssertEqual(unlink(dir + "/one"), 0)
        XCTAssertEqual(stat(dir + "/sub/two", &b), 0)
        XCTAssertEqual(b.st_nlink, 1)
        XCTAssertEqual(link(dir + "/sub/two", dir + "/sub/two"), -1)
        XCTAssertEqual(errno, EEXIST)
        XCTAssertEqual(link(dir + "/sub", dir + "/dirlink"), -1)
        XCTAssertEqual(errno, EPERM)
    }

    func testTenThousandEntryReaddirWithConcurrentCreateAndUnlink() throws {
        let big = dir + "/big"
        XCTAssertEqual(mkdir(big, 0o755), 0)
        let stable = 10_000
        for i in 0..<stable {
            let fd = open(big + "/stable-\(i)", O_CREAT | O_WRONLY, 0o644)
            XCTAssertGreaterThanOrEqual(fd, 0)
            close(fd)
        }
        let stop = ManagedAtomicFlag()
        let churn = Thread {
            var n = 0
            while !stop.isSet {
                let name = big + "/churn-\(n % 500)"
                let fd = open(name, O_CREAT | O_WRONLY, 0o644)
                if fd >= 0 { close(fd) }
                if n % 3 == 0 { unlink(big + "/churn-\((n + 250) % 500)") }
                n += 1
            }
        }
        churn.start()
        defer { stop.set() }
        for round in 0..<5 {
            guard let handle = opendir(big) else { return XCTFail("opendir: \(String(cString: strerror(errno)))") }
            var seen = [String: Int]()
            while let entry = readdir(handle) {
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                seen[name, default: 0] += 1
            }
            closedir(handle)
            let stableSeen = seen.filter { $0.key.hasPrefix("stable-") }
            XCTAssertEqual(stableSeen.count, stable, "round \(round): every stable entry appears")
            XCTAssertEqual(stableSeen.values.max(), 1, "round \(round): no stable entry appears twice")
            XCTAssertEqual(seen["."], 1)
            XCTAssertEqual(seen[".."], 1)
        }
    }

    func testSparseFileBeyondFourGiB() throws {
        let path = dir + "/sparse"
        let fd = open(path, O_CREAT | O_RDWR, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let far: off_t = 5 << 30
        XCTAssertEqual(pwrite(fd, "tail-data", 9, far), 9)
        XCTAssertEqual(pwrite(fd, "head", 4, 0), 4)
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        XCTAssertEqual(st.st_size, far + 9)
        XCTAssertLessThan(st.st_blocks, 1024, "a hole does not take disk space")
        XCTAssertEqual(lseek(fd, 0, clinux_SEEK_HOLE), 4096)
        XCTAssertEqual(lseek(fd, 4096, clinux_SEEK_DATA), far & ~4095)
        var buffer = [UInt8](repeating: 0xFF, count: 4096)
        XCTAssertEqual(pread(fd, &buffer, 4096, 1 << 30), 4096)
        XCTAssertTrue(buffer.allSatisfy { $0 == 0 }, "holes read as zeros")
        XCTAssertEqual(pread(fd, &buffer, 9, far), 9)
        XCTAssertEqual(String(decoding: buffer[0..<9], as: UTF8.self), "tail-data")
        XCTAssertEqual(ftruncate(fd, 6 << 30), 0)
        XCTAssertEqual(fstat(fd, &st), 0)
        XCTAssertEqual(st.st_size, 6 << 30)
    }

    func testEightThreadsWritingConcurrently() throws {
        let shared = dir + "/shared"
        let fd = open(shared, O_CREAT | O_RDWR, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let chunk = 64 * 1024
        let chunksPerThread = 32
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            let own = open(shared + "-\(thread)", O_CREAT | O_WRONLY, 0o644)
            for i in 0..<chunksPerThread {
                let bytes = pattern(chunk, seed: UInt64(thread * 1000 + i))
                let offset = off_t((i * 8 + thread) * chunk)
                _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, chunk, offset) }
                _ = bytes.withUnsafeBytes { write(own, $0.baseAddress, chunk) }
            }
            close(own)
        }
        XCTAssertEqual(fsync(fd), 0)
        var buffer = [UInt8](repeating: 0, count: chunk)
        for thread in 0..<8 {
            let own = open(shared + "-\(thread)", O_RDONLY)
            defer { close(own) }
            for i in 0..<chunksPerThread {
                let expected = pattern(chunk, seed: UInt64(thread * 1000 + i))
                XCTAssertEqual(pread(fd, &buffer, chunk, off_t((i * 8 + thread) * chunk)), chunk)
                XCTAssertEqual(buffer, expected, "shared file, thread \(thread) chunk \(i)")
                XCTAssertEqual(read(own, &buffer, chunk), chunk)
                XCTAssertEqual(buffer, expected, "own file of thread \(thread), chunk \(i)")
            }
        }
    }

    func testAppendFromSeveralProcessesNeverInterleaves() throws {
        let target = dir + "/log"
        let records = 300
        let recordSize = 64
        var processes: [Process] = []
        for writer in 0..<4 {
            var text = ""
            for i in 0..<records {
                let line = "writer \(writer) record \(i) "
                text += line + String(repeating: "x", count: recordSize - line.count - 1) + "\n"
            }
            let source = scratch.path + "/records-\(writer)"
            try text.write(toFile: source, atomically: false, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/dd")
            process.arguments = ["if=\(source)", "of=\(target)", "bs=\(recordSize)", "oflag=append", "conv=notrunc", "status=none"]
            processes.append(process)
        }
        for process in processes { try process.run() }
        for process in processes {
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
        }
        let lines = try String(contentsOfFile: target, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 4 * records)
        XCTAssertTrue(lines.allSatisfy { $0.count == recordSize - 1 && $0.hasPrefix("writer ") }, "every record is whole")
        for writer in 0..<4 {
            let own = lines.filter { $0.hasPrefix("writer \(writer) ") }
            XCTAssertEqual(own.count, records)
            XCTAssertEqual(own.map { Int($0.split(separator: " ")[3])! }, Array(0..<records), "writer \(writer) in order")
        }
    }

    func testSharedWritableMmap() throws {
        let path = dir + "/mapped"
        let size = 1 << 20
        let fd = open(path, O_CREAT | O_RDWR, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(ftruncate(fd, off_t(size)), 0)
        guard let map = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            close(fd)
            return XCTFail("mmap: \(String(cString: strerror(errno)))")
        }
        let bytes = map.bindMemory(to: UInt8.self, capacity: size)
        let expected = pattern(size, seed: 42)
        for i in 0..<size { bytes[i] = expected[i] }
        XCTAssertEqual(msync(map, size, MS_SYNC), 0)
        munmap(map, size)
        close(fd)
        XCTAssertEqual([UInt8](FileManager.default.contents(atPath: path)!), expected)
        mount.stop()
        XCTAssertEqual([UInt8](FileManager.default.contents(atPath: path)!), expected, "the mapped writes reached the backing file")
    }

    func testDirectIOWhereTheBackingFilesystemAllowsIt() throws {
        let path = dir + "/direct"
        let fd = open(path, O_CREAT | O_RDWR | clinux_O_DIRECT, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0, "O_DIRECT open: \(String(cString: strerror(errno)))")
        defer { close(fd) }
        var raw: UnsafeMutableRawPointer?
        XCTAssertEqual(posix_memalign(&raw, 4096, 8192), 0)
        defer { free(raw) }
        let expected = pattern(8192, seed: 7)
        expected.withUnsafeBytes { raw!.copyMemory(from: $0.baseAddress!, byteCount: 8192) }
        XCTAssertEqual(pwrite(fd, raw, 8192, 4096), 8192)
        memset(raw!, 0, 8192)
        XCTAssertEqual(pread(fd, raw, 8192, 4096), 8192)
        XCTAssertEqual(Array(UnsafeRawBufferPointer(start: raw, count: 8192)), expected)
    }

    func testLocksBehaveBetweenProcessesOnThisNode() throws {
        let path = dir + "/locked"
        try "x".write(toFile: path, atomically: false, encoding: .utf8)
        // flock(2): a holder keeps an exclusive lock while a second process tries without waiting.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["-x", path, "sleep", "3"]
        try holder.run()
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) }; holder.waitUntilExit() }
        usleep(500_000)
        let blocked = try runCommand(["/usr/bin/flock", "-n", "-x", path, "true"])
        XCTAssertEqual(blocked.status, 1, "flock conflicts with the holder")
        // POSIX record locks (fcntl), as SQLite and PostgreSQL use them.
        let script = """
        import fcntl, os, sys, time
        fd = os.open(sys.argv[1], os.O_RDWR)
        if sys.argv[2] == "hold":
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
            print("held", flush=True)
            time.sleep(3)
        else:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
                print("acquired")
            except OSError:
                print("conflict")
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 1)
            print("other-byte-ok")
        """
        let posixHolder = Process()
        posixHolder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        posixHolder.arguments = ["-c", script, path, "hold"]
        let out = Pipe()
        posixHolder.standardOutput = out
        try posixHolder.run()
        defer { if posixHolder.isRunning { kill(posixHolder.processIdentifier, SIGKILL) }; posixHolder.waitUntilExit() }
        _ = out.fileHandleForReading.availableData
        let contender = try mustRun(["/usr/bin/python3", "-c", script, path, "try"])
        XCTAssertEqual(contender, "conflict\nother-byte-ok\n")
    }

    func testPermissionsAsANonRootUser() throws {
        // The same script as user nobody on a plain directory and on ReplFS: same results.
        let plain = try scratch.sub("plain")
        for root in [plain, dir] {
            XCTAssertEqual(chmod(root, 0o777), 0)
            try "root's".write(toFile: root + "/roots-file", atomically: false, encoding: .utf8)
            XCTAssertEqual(chmod(root + "/roots-file", 0o644), 0)
            XCTAssertEqual(mkdir(root + "/sticky", 0o1777), 0)
            XCTAssertEqual(chmod(root + "/sticky", 0o1777), 0)
            try "x".write(toFile: root + "/sticky/roots", atomically: false, encoding: .utf8)
            XCTAssertEqual(mkdir(root + "/setgid", 0o2777), 0)
            XCTAssertEqual(chown(root + "/setgid", 0, 4242), 0)
            XCTAssertEqual(chmod(root + "/setgid", 0o2777), 0)
            XCTAssertEqual(mkdir(root + "/private", 0o700), 0)
        }
        let script = """
        cd "$1"
        r() { if "$@" 2>/dev/null; then echo "ok: $*"; else echo "refused: $*"; fi; }
        r touch mine
        r mkdir mydir
        r sh -c 'echo more >> roots-file'
        r chmod 600 roots-file
        r chown nobody roots-file
        r rm -f sticky/roots
        r touch sticky/mine
        r rm sticky/mine
        r touch setgid/inherits
        r mkdir setgid/subdir
        r ls private
        r touch private/no
        r ln -s mine mylink
        r mkfifo myfifo
        r mv mine renamed
        r truncate -s 100 renamed
        r chmod 4755 renamed
        stat -c '%n %u %g %a' renamed mydir setgid/inherits setgid/subdir mylink myfifo | sort
        """
        let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", script, "sh"]
        let onPlain = try runCommand(asNobody + [plain])
        let onReplFS = try runCommand(asNobody + [dir])
        XCTAssertEqual(onReplFS.output, onPlain.output)
        XCTAssertTrue(onPlain.output.contains("refused: sh -c echo more >> roots-file"), onPlain.output)
        XCTAssertTrue(onPlain.output.contains("renamed 65534 65534 4755"), onPlain.output)
        XCTAssertTrue(onPlain.output.contains("setgid/inherits 65534 4242"), onPlain.output)
        var st = stat()
        XCTAssertEqual(lstat(dir + "/renamed", &st), 0)
        XCTAssertEqual(st.st_uid, 65534, "files created by a user belong to that user")
    }

    func testStatfsReportsTheBackingFilesystem() throws {
        var mounted = statvfs(), backing = statvfs()
        XCTAssertEqual(statvfs(dir, &mounted), 0)
        XCTAssertEqual(statvfs(scratch.path, &backing), 0)
        XCTAssertEqual(mounted.f_bsize, backing.f_bsize)
        XCTAssertEqual(mounted.f_blocks, backing.f_blocks)
        XCTAssertEqual(mounted.f_files, backing.f_files)
    }
}

/// A flag one thread sets and another polls.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }

    func set() { lock.lock(); value = true; lock.unlock() }
}
