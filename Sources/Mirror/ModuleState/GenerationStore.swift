import Glibc
import MirrorCore
import ReplFS
import ReplProtocol

/// A module's data generations on this node, persisted in its state directory: a small text
/// file rewritten atomically (temporary file, fsync, rename, fsync of the directory) at every
/// change, so a crash leaves either the old or the new tuple.
///
///     current=5F3A9C21D0E4B817
///     bitmap=                       (empty: no change map being kept)
///     history=0A1B2C3D4E5F6071,...
///     up_to_date=true
///     alone_since=1795702800        (Unix time the current generation began alone; 0: not alone)
final class GenerationStore {
    let path: String
    private(set) var generations: DataGenerations
    /// When this node started serving without its peer in the current generation.
    private(set) var aloneSince: Int64
    private var source: GenerationIDSource

    /// Loads the tuple, or starts as "just created" when the file does not exist.
    init(directory: String) throws {
        path = directory + "/generations"
        var generator = SystemRandomNumberGenerator()
        source = GenerationIDSource(seed: generator.next())
        generations = .justCreated
        aloneSince = 0
        guard let text = try Self.contents(of: path) else { return }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        func id(_ text: Substring) -> GenerationID? { UInt64(text, radix: 16).map(GenerationID.init) }
        guard let currentText = fields["current"], let current = id(Substring(currentText)),
              let upToDate = fields["up_to_date"].flatMap(Bool.init) else {
            throw StateFileError(path: path, problem: "is damaged (no valid current= or up_to_date= line)")
        }
        let bitmap = fields["bitmap"].flatMap { $0.isEmpty ? nil : id(Substring($0)) }
        let history = (fields["history"] ?? "").split(separator: ",").compactMap(id)
        generations = DataGenerations(current: current, bitmap: bitmap, history: history, upToDate: upToDate)
        aloneSince = fields["alone_since"].flatMap { Int64($0) } ?? 0
    }

    /// Replaces the tuple, on disk first.
    func save(_ new: DataGenerations, aloneSince newAloneSince: Int64? = nil) throws {
        let since = newAloneSince ?? aloneSince
        let text = """
            current=\(hex(new.current))
            bitmap=\(new.bitmap.map(hex) ?? "")
            history=\(new.history.map(hex).joined(separator: ","))
            up_to_date=\(new.upToDate)
            alone_since=\(since)

            """
        try Self.writeAtomically(text, to: path)
        generations = new
        aloneSince = since
    }

    /// This node serves without its peer from now on: a new generation unless one is already
    /// being kept (see ``DataGenerations/startAlone(newCurrent:)``).
    func startAlone() throws {
        guard generations.mintsWhenAlone else { return }
        try save(generations.startAlone(newCurrent: source.next()).with(upToDate: true), aloneSince: Int64(time(nil)))
    }

    /// The operator made this node's copy the reference (a primary with no history).
    func startAsReference() throws {
        try save(DataGenerations(current: source.next(), upToDate: true), aloneSince: 0)
    }

    private func hex(_ id: GenerationID) -> String { String(id.rawValue, radix: 16, uppercase: true) }

    static func contents(of path: String) throws -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw StateFileError(path: path, problem: "cannot be read: \(FSError.last)")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count < 0 { throw StateFileError(path: path, problem: "cannot be read: \(FSError.last)") }
            if count == 0 { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func writeAtomically(_ text: String, to path: String) throws {
        let temporary = path + ".new"
        do {
            let fd = try sys { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600) }
            defer { close(fd) }
            let bytes = Array(text.utf8)
            var done = 0
            while done < bytes.count {
                done += try bytes[done...].withUnsafeBytes { raw in try sys { write(fd, raw.baseAddress, raw.count) } }
            }
            try sys { fsync(fd) }
            try sys { rename(temporary, path) }
            let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            let dirFD = try sys { open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            defer { close(dirFD) }
            try sys { fsync(dirFD) }
        } catch let error as FSError {
            throw StateFileError(path: path, problem: "cannot be written: \(error)")
        }
    }
}

/// A state file that cannot be used; the daemon refuses to run the module rather than guess.
struct StateFileError: Error, CustomStringConvertible {
    let path: String
    let problem: String
    var description: String { "\(path) \(problem)" }
}

extension DataGenerations {
    /// The tuple as the stream carries it.
    var wire: WireGenerations {
        WireGenerations(current: current.rawValue, bitmap: bitmap?.rawValue ?? 0, history: history.map(\.rawValue),
                        upToDate: upToDate)
    }

    init(wire: WireGenerations) {
        self.init(current: GenerationID(wire.current), bitmap: wire.bitmap == 0 ? nil : GenerationID(wire.bitmap),
                  history: wire.history.map(GenerationID.init), upToDate: wire.upToDate)
    }
}
