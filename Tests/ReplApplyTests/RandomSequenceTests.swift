import XCTest

/// Seeded random operation mixes, done directly on the primary's directory and applied as
/// messages to the replica: every outcome matches, and the trees end identical.
final class RandomSequenceTests: XCTestCase {
    /// A failure names its seed; the run replays from it.
    static let seeds: [UInt64] = Array(1...24)
    static let operationsPerSeed = 400

    func testRandomSequencesEndIdentical() throws {
        for seed in Self.seeds {
            let pair = try MirrorPair("random-\(seed)", maximumOpenFiles: 4)
            var generator = OperationGenerator(seed: seed)
            var history: [Operation] = []
            for step in 0..<Self.operationsPerSeed {
                let operation = generator.next()
                history.append(operation)
                if let mismatch = pair.replicate(operation) {
                    let recent = history.suffix(12).map { "  \($0)" }.joined(separator: "\n")
                    return XCTFail("seed \(seed), step \(step): \(mismatch); recent operations:\n\(recent)")
                }
            }
            XCTAssertGreaterThan(pair.replicatedCount, Self.operationsPerSeed / 3, "seed \(seed): many operations replicate")
            XCTAssertGreaterThan(pair.failedAlikeCount, 10, "seed \(seed): some fail alike on both sides")
            pair.forgetAll()
            XCTAssertEqual(pair.applier.boundNodeCount, 1, "seed \(seed): only the root stays bound")
            let differences = try pair.treeDifferences()
            XCTAssert(differences.isEmpty, "seed \(seed): trees differ:\n" + differences.joined(separator: "\n"))
        }
    }
}
