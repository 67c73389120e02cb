import MirrorCore

/// How the pure core's values travel: shared by heartbeats and witness messages.
///
/// - `TickStamp`: incarnation `u64`, tick `i64`.
/// - `DataGenerations`: current `u64`, flags `u8` (1: bitmap follows, 2: up to date), bitmap `u64`
///   if flagged, history count `u8` (at most ``DataGenerations/historyLength``), that many `u64`.
/// - `ModuleState`: `u8` (STOP 0, WAIT 1, ALONE 2, PRIM 3, SECOND 4).
extension WireWriter {
    mutating func append(_ stamp: TickStamp) {
        append(stamp.incarnation)
        append(Int64(stamp.tick))
    }

    mutating func append(_ generations: DataGenerations) {
        append(generations.current.rawValue)
        append(UInt8((generations.bitmap == nil ? 0 : 1) | (generations.upToDate ? 2 : 0)))
        if let bitmap = generations.bitmap { append(bitmap.rawValue) }
        append(UInt8(generations.history.count))
        for id in generations.history { append(id.rawValue) }
    }

    mutating func append(_ state: ModuleState) {
        append(ModuleState.wireCodes.firstIndex(of: state).map(UInt8.init)!)
    }
}

extension WireReader {
    mutating func readStamp(_ field: String) throws -> TickStamp {
        let incarnation = try read(UInt64.self, "\(field).incarnation")
        let tick = try read(Int64.self, "\(field).tick")
        guard let tick = Int(exactly: tick) else { throw WireError.invalid("\(field).tick", "out of range") }
        return TickStamp(incarnation: incarnation, tick: tick)
    }

    mutating func readGenerations(_ field: String) throws -> DataGenerations {
        let current = GenerationID(try read(UInt64.self, "\(field).current"))
        let flags = try read(UInt8.self, "\(field).flags")
        guard flags & ~3 == 0 else { throw WireError.invalid("\(field).flags", "unknown bits \(flags)") }
        let bitmap = flags & 1 != 0 ? GenerationID(try read(UInt64.self, "\(field).bitmap")) : nil
        let count = Int(try read(UInt8.self, "\(field).history count"))
        guard count <= DataGenerations.historyLength else {
            throw WireError.invalid("\(field).history count", "\(count), at most \(DataGenerations.historyLength)")
        }
        var history: [GenerationID] = []
        for index in 0..<count { history.append(GenerationID(try read(UInt64.self, "\(field).history[\(index)]"))) }
        return DataGenerations(current: current, bitmap: bitmap, history: history, upToDate: flags & 2 != 0)
    }

    mutating func readState(_ field: String) throws -> ModuleState {
        let code = Int(try read(UInt8.self, field))
        guard code < ModuleState.wireCodes.count else { throw WireError.invalid(field, "unknown state \(code)") }
        return ModuleState.wireCodes[code]
    }
}

extension ModuleState {
    /// The wire code of each state is its position here: never reorder, only append.
    static let wireCodes: [ModuleState] = [.stop, .wait, .alone, .prim, .second]
}
