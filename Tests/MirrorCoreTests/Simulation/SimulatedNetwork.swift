import MirrorCore
import TestSupport

/// How one direction of a simulated link behaves.
enum LinkMode: String {
    /// Every message arrives within the normal delay.
    case up
    /// Messages may be dropped, duplicated or delayed more.
    case lossy
    /// Nothing arrives.
    case down
}

/// A message in flight.
enum SimulatedMessage {
    case heartbeat(Heartbeat, to: Int)
    case toWitness(WitnessRequest, from: Int)
    case fromWitness(WitnessVerdict, to: Int)
}

/// The in-flight messages of the cluster and the state of every link (node i → node j, and each
/// node ↔ witness), driven by the simulation's seeded generator.
struct SimulatedNetwork {
    static let normalDelay = 0...1
    static let lossyDelay = 0...3

    /// `nodeLinks[i]`: the direction from node i to the other node.
    var nodeLinks: [LinkMode] = [.up, .up]
    /// `witnessLinks[i]`: both directions between node i and the witness.
    var witnessLinks: [LinkMode] = [.up, .up]
    private var queue: [(deliverAt: Int, sequence: Int, message: SimulatedMessage)] = []
    private var sequence = 0

    /// Queues `message` over a link in `mode` (dropped, duplicated or delayed as the mode says).
    mutating func send(_ message: SimulatedMessage, over mode: LinkMode, now: Int, random: inout SeededGenerator) {
        switch mode {
        case .down:
            return
        case .up:
            enqueue(message, at: now + random.int(in: Self.normalDelay))
        case .lossy:
            if random.chance(0.3) { return }
            enqueue(message, at: now + random.int(in: Self.lossyDelay))
            if random.chance(0.1) { enqueue(message, at: now + random.int(in: Self.lossyDelay)) }
        }
    }

    /// Removes and returns the messages due at `now`, in delivery order.
    mutating func due(at now: Int) -> [SimulatedMessage] {
        guard queue.contains(where: { $0.deliverAt <= now }) else { return [] }
        let ready = queue.filter { $0.deliverAt <= now }.sorted { a, b in
            a.deliverAt != b.deliverAt ? a.deliverAt < b.deliverAt : a.sequence < b.sequence
        }
        queue.removeAll { $0.deliverAt <= now }
        return ready.map(\.message)
    }

    /// Whether both directions between the nodes work without loss.
    var nodesFullyConnected: Bool { nodeLinks == [.up, .up] }

    /// Whether data can flow between the nodes at all (the replication stream retries losses).
    var nodesConnected: Bool { !nodeLinks.contains(.down) }

    private mutating func enqueue(_ message: SimulatedMessage, at time: Int) {
        sequence += 1
        queue.append((time, sequence, message))
    }
}
