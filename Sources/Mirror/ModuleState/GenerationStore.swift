import Glibc
import MirrorCore
import ReplFS
import ReplProtocol
import ReplTransport

/// A module's data generations on this node, persisted in its state directory: a small text
/// file rewritten atomically (temporary file, fsync, rename, fsync of the directory) at every
/// change, so a crash leaves either the old or the new tuple. Safe to use from several threads
/// (the data layer's and the cluster loop's): every change happens under one lock.
///
///     current=5F3A9C21D0E4B817
///     bitmap=                       (empty: no change map being kept)
///     history=0A1B2C3D4E5F6071,...
///     up_to_date=true
///     alone_since=1795702800        (Unix time the current generation began alone; 0: not alone)
final class GenerationStore {
    let path: String
    private let lock = Monitor()
    private var stored: DataGenerations
    private var storedAloneSince: Int64
    private var source: GenerationIDSource

    var generations: DataGenerations { lock.locked { stored } }
    /// When this node started serving without its peer in the current generation.
    var aloneSince: Int64 { lock.locked { storedAloneSince } }

    /// Loads the tuple, or starts as "just created" when the file does not exist.
    init(directory: String) throws {
        path = directory + "/generations"
        var generator = SystemRandomNumberGenerator()
        source = GenerationIDSource(seed: generator.next())
        stored = .justCreated
        storedAloneSince = 0
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
        stored = DataGenerations(current: current, bitmap: bitmap, history: history, upToDate: upToDate)
        storedAloneSince = fields["alone_since"].flatMap { Int64($0) } ?? 0
    }

    /// Replaces the tuple, on disk first.
    func save(_ new: DataGenerations, aloneSince newAloneSince: Int64? = nil) throws {
        try lock.locked { try saveLocked(new, aloneSince: newAloneSince) }
    }

    /// Replaces the tuple only if it is still `expected` (another thread may have changed it
    /// since the caller looked); returns whether it did.
    func save(_ new: DataGenerations, ifStill expected: (DataGenerations) -> Bool, aloneSince newAloneSince: Int64? = nil) throws -> Bool {
        try lock.locked {
            guard expected(stored) else { return false }
            try saveLocked(new, aloneSince: newAloneSince)
            return true
        }
    }

    private func saveLocked(_ new: DataGenerations, aloneSince newAloneSince: Int64?) throws {
        let since = newAloneSince ?? storedAloneSince
        let text = """
            current=\(hex(new.current))
            bitmap=\(new.bitmap.map(hex) ?? "")
            history=\(new.history.map(hex).joined(separator: ","))
            up_to_date=\(new.upToDate)
            alone_since=\(since)

            """
        try Self.writeAtomically(text, to: path)
        stored = new
        storedAloneSince = since
    }

    /// This node serves without its peer from now on: a new generation unless one is already
    /// being kept (see ``DataGenerations/startAlone(newCurrent:)``); `id` is the one to mint
    /// (the same for every directory of a module), by default a fresh one.
    func startAlone(minting id: GenerationID? = nil) throws {
        try lock.locked {
            guard stored.mintsWhenAlone else { return }
            try saveLocked(stored.startAlone(newCurrent: id ?? source.next()).with(upToDate: true), aloneSince: Int64(time(nil)))
        }
    }

    /// The operator made this node's copy the reference (a primary with no history).
    func startAsReference() throws {
        try lock.locked { try saveLocked(DataGenerations(current: source.next(), upToDate: true), aloneSince: 0) }
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
