import Foundation
import Glibc
import TestSupport

/// The writer child process of the durability tests: a Python script that changes files on a
/// mount (creates, writes of random sizes at random offsets, truncates, renames, fsyncs) and
/// notes each operation in a log outside the mount: `I n what` before the call, `A n [bytes]`
/// once it returned successfully (acknowledged), `F n errno` if it failed (then it exits 1).
///
/// A write's bytes are a pattern of the operation number and the absolute file position (see
/// ``WriterPattern``), so the expected content of every byte is known from the log alone.
enum AcknowledgedWriter {
    static let script = #"""
        import array, os, random, sys
        assert sys.byteorder == "little"
        mount, log_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
        rng = random.Random(seed)
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

        def note(text):
            # One write(2) per line: a line is either wholly in the log or not at all when killed.
            os.write(log, (text + "\n").encode())

        # Word i of every pattern is i + (op << 40): bytes 0-4 hold i (below 2**40), bytes 5-7 the
        # operation, so a pattern is the index words with their top three bytes replaced.
        INDEX = array.array("Q", range(0, ((2 << 20) + (512 << 10)) // 8 + 2)).tobytes()

        def pattern(op, offset, length):
            first, end = offset // 8, (offset + length + 7) // 8
            data = bytearray(INDEX[first * 8:end * 8])
            for byte in range(3):
                data[5 + byte::8] = bytes([(op >> (8 * byte)) & 0xFF]) * (end - first)
            skip = offset - first * 8
            return bytes(data[skip:skip + length])

        def run(op, intent, call):
            note(f"I {op} {intent}")
            try:
                result = call()
            except OSError as error:
                note(f"F {op} {error.errno}")
                sys.exit(1)
            note(f"A {op}" + ("" if result is None else f" {result}"))

        fds = {}    # our inode number -> open descriptor (kept open across renames and replacements)
        names = {}  # name on the mount -> our inode number
        created = renamed = 0
        op = 0
        while True:
            op += 1
            r = rng.random()
            if not names or (len(names) < 5 and r < 0.05):
                created += 1
                name, inode = f"f{created}", created
                path = os.path.join(mount, name)
                def create():
                    fds[inode] = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
                run(op, f"create {name} {inode}", create)
                names[name] = inode
                continue
            named = sorted(set(names.values()))
            inode = rng.choice(named) if rng.random() < 0.9 else rng.choice(sorted(fds))
            fd = fds[inode]
            if r < 0.75:
                offset = rng.randrange(0, 2 << 20)
                length = rng.choice([rng.randint(1, 4096), rng.randint(1, 64 << 10), rng.randint(1, 512 << 10)])
                data = pattern(op, offset, length)
                run(op, f"write {inode} {offset} {length}", lambda: os.pwrite(fd, data, offset))
            elif r < 0.80:
                size = rng.randrange(0, 2560 << 10)
                run(op, f"truncate {inode} {size}", lambda: os.ftruncate(fd, size))
            elif r < 0.88:
                run(op, f"fsync {inode}", lambda: os.fsync(fd))
            elif r < 0.92:
                run(op, f"fdatasync {inode}", lambda: os.fdatasync(fd))
            else:
                source = rng.choice(sorted(names))
                others = sorted(n for n in names if n != source)
                if others and rng.random() < 0.4:
                    target = rng.choice(others)
                else:
                    renamed += 1
                    target = f"r{renamed}"
                run(op, f"rename {source} {target}",
                    lambda: os.rename(os.path.join(mount, source), os.path.join(mount, target)))
                names[target] = names.pop(source)
        """#
}

/// The bytes the writer puts at each absolute file position for operation `op`: the 64-bit
/// little-endian word `(op << 40) + position / 8` at every 8-byte-aligned position.
enum WriterPattern {
    static func byte(op: UInt64, at position: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: word(op: op, index: position >> 3) >> (UInt64(position & 7) * 8))
    }

    static func word(op: UInt64, index: Int) -> UInt64 { (op << 40) &+ UInt64(index) }
}

/// The expected content of one file: its size, and which operation last wrote each byte (every
/// other byte below the size is zero: a hole or a truncation's extension).
struct FileImage {
    private(set) var size = 0
    /// Sorted, non-overlapping: bytes `start..<end` last written by operation `op`.
    private(set) var segments: [(start: Int, end: Int, op: UInt64)] = []

    mutating func write(op: UInt64, offset: Int, length: Int) {
        guard length > 0 else { return }
        let end = offset + length
        var kept: [(start: Int, end: Int, op: UInt64)] = []
        kept.reserveCapacity(segments.count + 2)
        var inserted = false
        for segment in segments {
            if segment.end <= offset || segment.start >= end {
                if !inserted && segment.start >= end {
                    kept.append((offset, end, op))
                    inserted = true
                }
                kept.append(segment)
                continue
            }
            if segment.start < offset { kept.append((segment.start, offset, segment.op)) }
            if !inserted {
                kept.append((offset, end, op))
                inserted = true
            }
            if segment.end > end { kept.append((end, segment.end, segment.op)) }
        }
        if !inserted { kept.append((offset, end, op)) }
        segments = kept
        size = max(size, end)
    }

    mutating func truncate(to newSize: Int) {
        segments = segments.compactMap { segment in
            guard segment.start < newSize else { return nil }
            return (segment.start, min(segment.end, newSize), segment.op)
        }
        size = newSize
    }

    /// The operation that last wrote `position` (0: a zero byte).
    func writer(of position: Int) -> UInt64 {
        var low = 0, high = segments.count
        while low < high {
            let middle = (low + high) / 2
            if segments[middle].end <= position { low = middle + 1 } else { high = middle }
        }
        return low < segments.count && segments[low].start <= position ? segments[low].op : 0
    }

    func expectedByte(at position: Int) -> UInt8 {
        let op = writer(of: position)
        return op == 0 ? 0 : WriterPattern.byte(op: op, at: position)
    }

    /// The first position in `range` (within both `actual` and the image) whose byte differs.
    func firstMismatch(in actual: UnsafeRawBufferPointer, range: Range<Int>) -> Int? {
        var position = range.lowerBound
        var index = segments.firstIndex { $0.end > position } ?? segments.count
        while position < range.upperBound {
            if index < segments.count && segments[index].start <= position {
                let end = min(segments[index].end, range.upperBound)
                if let bad = Self.firstMismatch(in: actual, op: segments[index].op, range: position..<end) { return bad }
                position = end
                index += 1
            } else {
                let end = min(index < segments.count ? segments[index].start : range.upperBound, range.upperBound)
                if let bad = Self.firstMismatch(in: actual, op: 0, range: position..<end) { return bad }
                position = end
            }
        }
        return nil
    }

    /// Against operation `op`'s pattern (0: zeros), a word at a time where aligned.
    private static func firstMismatch(in actual: UnsafeRawBufferPointer, op: UInt64, range: Range<Int>) -> Int? {
        func expected(_ position: Int) -> UInt8 { op == 0 ? 0 : WriterPattern.byte(op: op, at: position) }
        var position = range.lowerBound
        while position < range.upperBound && position & 7 != 0 {
            if actual[position] != expected(position) { return position }
            position += 1
        }
        while position + 8 <= range.upperBound {
            let word = actual.loadUnaligned(fromByteOffset: position, as: UInt64.self)
            if word != (op == 0 ? 0 : WriterPattern.word(op: op, index: position >> 3)) {
                for byte in position..<position + 8 where actual[byte] != expected(byte) { return byte }
            }
            position += 8
        }
        while position < range.upperBound {
            if actual[position] != expected(position) { return position }
            position += 1
        }
        return nil
    }
}

/// One operation of the writer, as its log names it.
enum WriterOperation: Equatable, CustomStringConvertible {
    case create(name: String, inode: Int)
    case write(inode: Int, offset: Int, length: Int)
    case truncate(inode: Int, size: Int)
    case fsync(inode: Int, dataOnly: Bool)
    case rename(from: String, to: String)

    init?(_ words: [Substring]) {
        func int(_ index: Int) -> Int? { index < words.count ? Int(words[index]) : nil }
        switch words.first {
        case "create": guard words.count == 3, let inode = int(2) else { return nil }; self = .create(name: String(words[1]), inode: inode)
        case "write": guard words.count == 4, let inode = int(1), let offset = int(2), let length = int(3) else { return nil }
            self = .write(inode: inode, offset: offset, length: length)
        case "truncate": guard words.count == 3, let inode = int(1), let size = int(2) else { return nil }; self = .truncate(inode: inode, size: size)
        case "fsync", "fdatasync": guard words.count == 2, let inode = int(1) else { return nil }
            self = .fsync(inode: inode, dataOnly: words[0] == "fdatasync")
        case "rename": guard words.count == 3 else { return nil }; self = .rename(from: String(words[1]), to: String(words[2]))
        default: return nil
        }
    }

    var description: String {
        switch self {
        case .create(let name, let inode): return "create \(name) (inode \(inode))"
        case .write(let inode, let offset, let length): return "write inode \(inode) offset \(offset) length \(length)"
        case .truncate(let inode, let size): return "truncate inode \(inode) to \(size)"
        case .fsync(let inode, let dataOnly): return "\(dataOnly ? "fdatasync" : "fsync") inode \(inode)"
        case .rename(let from, let to): return "rename \(from) to \(to)"
        }
    }
}

/// What the writer's log says: the operations acknowledged, in order, and the one in flight
/// (started, not acknowledged: it may or may not have reached the secondary; or the part of a
/// last write that returned short).
struct WriterLog {
    struct Entry {
        let number: UInt64
        let operation: WriterOperation
        /// Bytes a write reported written.
        let written: Int?
    }

    private(set) var acknowledged: [Entry] = []
    private(set) var inFlight: Entry?
    /// The errno of the in-flight operation, if the writer saw it fail.
    private(set) var inFlightErrno: Int32?

    init(text: String) throws {
        var started: Entry?
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count >= 2, let number = UInt64(words[1]) else { throw TestFailure("bad log line '\(line)'") }
            switch words[0] {
            case "I":
                guard started == nil else { throw TestFailure("operation \(number) started before \(started!.number) ended") }
                guard let operation = WriterOperation(Array(words.dropFirst(2))) else { throw TestFailure("bad log line '\(line)'") }
                started = Entry(number: number, operation: operation, written: nil)
            case "A":
                guard let entry = started, entry.number == number else { throw TestFailure("'\(line)' acknowledges nothing started") }
                acknowledged.append(Entry(number: number, operation: entry.operation, written: words.count > 2 ? Int(words[2]) : nil))
                started = nil
            case "F":
                guard let entry = started, entry.number == number else { throw TestFailure("'\(line)' fails nothing started") }
                inFlightErrno = words.count > 2 ? Int32(words[2]) : nil
                inFlight = entry
                started = nil
            default:
                throw TestFailure("bad log line '\(line)'")
            }
        }
        if let started { inFlight = started }
        // A write that reported fewer bytes than asked ended with the daemon: the kernel splits a
        // large write into several requests, and those after the last acknowledged one may have
        // reached the secondary. Its remainder counts as in flight.
        if inFlight == nil, let last = acknowledged.last, case .write(let inode, let offset, let length) = last.operation,
           let written = last.written, written < length {
            inFlight = Entry(number: last.number, operation: .write(inode: inode, offset: offset + written, length: length - written),
                             written: nil)
        }
    }
}

/// The files and names the writer's acknowledged operations leave.
struct WriterModel {
    var files: [Int: FileImage] = [:]
    var names: [String: Int] = [:]

    mutating func apply(_ entry: WriterLog.Entry) {
        switch entry.operation {
        case .create(let name, let inode):
            files[inode] = FileImage()
            names[name] = inode
        case .write(let inode, let offset, let length):
            files[inode, default: FileImage()].write(op: entry.number, offset: offset, length: entry.written ?? length)
        case .truncate(let inode, let size):
            files[inode, default: FileImage()].truncate(to: size)
        case .fsync:
            break
        case .rename(let from, let to):
            if let inode = names.removeValue(forKey: from) { names[to] = inode }
        }
    }

    func applying(_ entry: WriterLog.Entry) -> WriterModel {
        var copy = self
        copy.apply(entry)
        return copy
    }

    /// Differences between the files of `directory` and this model, one line each (at most a few);
    /// empty if they match. `inFlightWrite`: a write that may be there wholly, in part or not at
    /// all (each byte of its range may hold the old or the new content; the size anything between).
    func differences(in directory: String, inFlightWrite: WriterLog.Entry? = nil) -> [String] {
        var problems: [String] = []
        let present = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? ["(unreadable)"]).sorted()
        if present != names.keys.sorted() {
            problems.append("names: \(present) instead of \(names.keys.sorted())")
        }
        for name in names.keys.sorted() where present.contains(name) {
            let inode = names[name]!
            let image = files[inode] ?? FileImage()
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
                problems.append("\(name): unreadable")
                continue
            }
            let problem = data.withUnsafeBytes { actual -> String? in
                if let entry = inFlightWrite, case .write(inode, let offset, let length) = entry.operation {
                    return tolerantDifference(actual, image: image, op: entry.number, offset: offset, length: length)
                }
                guard actual.count == image.size else { return "size \(actual.count) instead of \(image.size)" }
                return image.firstMismatch(in: actual, range: 0..<image.size).map { describe($0, actual, image) }
            }
            if let problem { problems.append("\(name) (inode \(inode)): \(problem)") }
        }
        return problems
    }

    private func tolerantDifference(_ actual: UnsafeRawBufferPointer, image: FileImage, op: UInt64, offset: Int, length: Int) -> String? {
        let before = image.size
        let after = max(before, offset + length)
        let size = actual.count
        guard size >= before && size <= after else { return "size \(size), neither \(before) nor up to \(after) (in-flight write)" }
        let window = offset..<(offset + length)
        let unchanged = min(size, before)
        for range in [0..<min(offset, unchanged), min(window.upperBound, unchanged)..<unchanged] where !range.isEmpty {
            // The bytes the in-flight write does not touch keep their acknowledged content.
            if let bad = image.firstMismatch(in: actual, range: range) { return describe(bad, actual, image) }
        }
        for position in window.lowerBound..<max(window.lowerBound, min(window.upperBound, size)) {
            let byte = actual[position]
            if byte == WriterPattern.byte(op: op, at: position) { continue }
            if position < before && byte == image.expectedByte(at: position) { continue }
            return describe(position, actual, image) + " (nor the in-flight write's \(WriterPattern.byte(op: op, at: position)))"
        }
        for position in before..<max(before, min(offset, size)) where actual[position] != 0 {
            return "byte \(position) is \(actual[position]) instead of 0 (hole before the in-flight write)"
        }
        return nil
    }

    private func describe(_ position: Int, _ actual: UnsafeRawBufferPointer, _ image: FileImage) -> String {
        let op = image.writer(of: position)
        let aligned = position & ~7
        let found = aligned + 8 <= actual.count ? actual.loadUnaligned(fromByteOffset: aligned, as: UInt64.self) : 0
        return "byte \(position) is \(actual[position]) instead of \(image.expectedByte(at: position)) "
            + (op == 0 ? "(zero: hole or truncation)" : "(written by operation \(op))")
            + "; its word \(found == 0 ? "is zero" : "looks written by operation \(found >> 40) for word \(found & 0xFF_FFFF_FFFF)")"
    }
}
