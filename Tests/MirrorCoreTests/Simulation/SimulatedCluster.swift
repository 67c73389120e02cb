import MirrorCore
import TestSupport

/// Two simulated nodes, an optional witness, a network and a virtual clock, in one thread.
///
/// Every event a node receives goes through ``step(_:_:)``, which performs the node's actions on the
/// simulated world (disk, mounts, VIP, messages) and then checks the invariants. Randomness comes
/// from one seeded generator, so a run replays exactly from its seed.
final class SimulatedCluster {
    /// Timing and behaviour of a simulated cluster.
    struct Settings {
        var witness: WitnessTiming?
        var heartbeatIntervalTicks = 2
        var peerTimeoutTicks = 8
        /// Ticks a resync needs once both sides run it.
        var resyncTicks = 5
        /// Chance that a node crashes in the middle of performing one step's actions.
        var crashBetweenActions = 0.0
        /// Chance per tick that a serving node's application writes.
        var writeChance = 0.0
        /// Chance that a resync fails when it would complete.
        var resyncFailureChance = 0.0
        /// Keep a trace of every step (runs are deterministic: a failing seed is replayed with it).
        var recordsTrace = true

        func config(node: String, peer: String) -> ModuleConfig {
            ModuleConfig(node: node, peer: peer, heartbeatIntervalTicks: heartbeatIntervalTicks, peerTimeoutTicks: peerTimeoutTicks,
                         witness: witness, processRestartLimit: 2, processRestartWindowTicks: 40)
        }
    }

    /// One step as recorded for the failure report.
    struct TraceEntry {
        var time: Int
        var node: String
        var event: Event
        var before: ModuleState?
        var after: ModuleState?
        var actions: [Action]
    }

    static let initialGenerations = DataGenerations(current: GenerationID(0xA0), upToDate: true)

    let settings: Settings
    private(set) var time = 0
    let nodes: [SimulatedNode]
    var network = SimulatedNetwork()
    var arbiter: WitnessArbiter?
    var random: SeededGenerator
    /// Ghost: the content holding every acknowledged write (forced `prim` resets it).
    var reference = 0
    var nextContent = 1
    private(set) var violations: [String] = []
    private(set) var trace: [TraceEntry] = []
    /// Consecutive ticks with both nodes serving over a lossless link (without a witness).
    var bothServingWhileConnected = 0

    init(settings: Settings, seed: UInt64) {
        self.settings = settings
        random = SeededGenerator(seed: seed)
        nodes = [SimulatedNode(name: "node1", config: settings.config(node: "node1", peer: "node2"), disk: Self.initialGenerations),
                 SimulatedNode(name: "node2", config: settings.config(node: "node2", peer: "node1"), disk: Self.initialGenerations)]
        arbiter = settings.witness.map { WitnessArbiter(leaseTicks: $0.leaseTicks) }
        for index in nodes.indices { boot(index, start: false) }
    }

    /// The pair of states as the operator sees it (nil: node down).
    var states: [ModuleState?] { nodes.map(\.state) }

    /// Starts a daemon on node `index` from its disk; `start` sends the start command (boot autostart).
    func boot(_ index: Int, start: Bool) {
        nodes[index].boot(seed: random.next())
        step(index, .localDataLoaded(nodes[index].disk))
        if start { step(index, .command(.start)) }
    }

    /// An operator command on node `index`.
    @discardableResult
    func command(_ index: Int, _ command: Command) -> [Action] {
        if command == .prim { nodes[index].primAccepted = true }
        if command == .second { nodes[index].secondAccepted = true }
        return step(index, .command(command))
    }

    /// Feeds one event to node `index` (if up), performs its actions, checks the invariants.
    @discardableResult
    func step(_ index: Int, _ event: Event) -> [Action] {
        let node = nodes[index]
        guard let before = node.machine?.state, let actions = node.machine?.step(event) else { return [] }
        record(TraceEntry(time: time, node: node.name, event: event, before: before, after: node.machine?.state, actions: actions))
        let crashAfter = random.chance(settings.crashBetweenActions) && !actions.isEmpty ? random.int(in: 0...(actions.count - 1)) : nil
        for (position, action) in actions.enumerated() {
            perform(action, on: index)
            if position == crashAfter {
                crash(index)
                break
            }
        }
        if nodes[index].state == .stop {
            nodes[index].primAccepted = false
            nodes[index].secondAccepted = false
        }
        checkServingNodes()
        return actions
    }

    func crash(_ index: Int) {
        nodes[index].crash()
        nodes[index].downFor = random.int(in: 1...30)
        record(TraceEntry(time: time, node: nodes[index].name, event: .tick, before: nil, after: nil, actions: []))
    }

    /// One unit of virtual time: deliver what is due, tick every node, progress resyncs and writes.
    func tick() {
        time += 1
        for message in network.due(at: time) { deliver(message) }
        for index in (random.chance(0.5) ? [0, 1] : [1, 0]) { step(index, .tick) }
        progressResyncs()
        applicationWrites()
        checkAfterTick()
    }

    func run(ticks: Int) {
        for _ in 0..<ticks { tick() }
    }

    private func deliver(_ message: SimulatedMessage) {
        switch message {
        case .heartbeat(let heartbeat, let to):
            step(to, .heartbeat(heartbeat))
        case .toWitness(let request, let from):
            guard let verdict = arbiter?.decide(request, now: time) else { return }
            network.send(.fromWitness(verdict, to: from), over: network.witnessLinks[from], now: time, random: &random)
        case .fromWitness(let verdict, let to):
            step(to, .witnessVerdict(verdict))
        }
    }

    private func perform(_ action: Action, on index: Int) {
        switch action {
        case .persistGenerations(let generations):
            checkPersist(index, generations)
            nodes[index].disk = generations
        case .mountReadWrite:
            checkPersistedBeforeServing(index, "mount read-write")
            checkServingEntry(index)
            nodes[index].mountedReadWrite = true
        case .mountReadOnly, .unmount:
            nodes[index].mountedReadWrite = false
        case .runStartScript:
            nodes[index].applicationRunning = true
        case .runStopScript:
            nodes[index].applicationRunning = false
        case .addVirtualIP:
            checkPersistedBeforeServing(index, "add the virtual IP")
            nodes[index].virtualIP = true
        case .removeVirtualIP:
            nodes[index].virtualIP = false
        case .startResync(let plan):
            if plan.direction == .receive { checkResyncTowardsMe(index) }
            nodes[index].resyncSide = (time, plan)
        case .stopResync:
            nodes[index].resyncSide = nil
        case .askWitness(let request):
            if arbiter != nil {
                network.send(.toWitness(request, from: index), over: network.witnessLinks[index], now: time, random: &random)
            }
        case .announce(let heartbeat):
            network.send(.heartbeat(heartbeat, to: 1 - index), over: network.nodeLinks[index], now: time, random: &random)
        case .refuse(let command, _):
            if command == .prim { nodes[index].primAccepted = false }
            if command == .second { nodes[index].secondAccepted = false }
        case .restartProcess, .log:
            break
        }
    }

    /// A resync completes once both sides ran it long enough over a working link: the target's
    /// data becomes the source's; both data layers report it (source first).
    private func progressResyncs() {
        for target in nodes.indices {
            let source = 1 - target
            guard let receiving = nodes[target].resyncSide, receiving.plan.direction == .receive,
                  let sending = nodes[source].resyncSide, sending.plan.direction == .send,
                  nodes[target].state == .second, nodes[source].state == .prim, network.nodesConnected,
                  time - max(receiving.since, sending.since) >= settings.resyncTicks else { continue }
            if random.chance(settings.resyncFailureChance) {
                step(source, .resyncFailed)
                step(target, .resyncFailed)
                continue
            }
            nodes[target].content = nodes[source].content
            nodes[source].resyncSide = nil
            nodes[target].resyncSide = nil
            step(source, .resyncFinished)
            step(target, .resyncFinished)
        }
    }

    /// Serving applications write; a PRIM's write is acknowledged only once its SECOND has it.
    private func applicationWrites() {
        for index in nodes.indices where nodes[index].isServing && nodes[index].applicationRunning && random.chance(settings.writeChance) {
            let other = 1 - index
            let written = nextContent
            if nodes[index].state == .prim {
                guard nodes[other].state == .second, network.nodesConnected else { continue } // blocked, not acknowledged
                if nodes[other].content == nodes[index].content { nodes[other].content = written }
            }
            nextContent += 1
            nodes[index].content = written
            reference = written
        }
    }

    private static func describe(_ event: Event) -> String {
        switch event {
        case .heartbeat(let h):
            return "heartbeat(\(h.announcement.state.rawValue) \(h.announcement.generations.map { "\($0)" } ?? "-") mayServe \(h.announcement.mayServe))"
        case .witnessVerdict(let v): return "witness(\(v.mayServe) for \(v.servingGeneration))"
        default: return "\(event)"
        }
    }

    func violation(_ message: String) {
        violations.append("t=\(time): \(message)")
    }

    private func record(_ entry: @autoclosure () -> TraceEntry) {
        guard settings.recordsTrace else { return }
        trace.append(entry())
        if trace.count > 3000 { trace.removeFirst(1000) }
    }

    /// The last steps that did something (state change or an action other than a heartbeat),
    /// for a failure report.
    func traceReport(last count: Int = 60) -> String {
        let eventful = trace.filter { entry in
            entry.before != entry.after || entry.before == nil || entry.actions.contains { action in
                if case .announce = action { return false } else { return true }
            }
        }
        return eventful.suffix(count).map { entry in
            let change = entry.before == nil ? "crashed" : "\(entry.before!.rawValue)->\(entry.after!.rawValue)"
            let actions = entry.actions.map { action -> String in
                switch action {
                case .log(let rule, let message): return "log(\(rule): \(message))"
                case .persistGenerations(let g): return "persist(\(g))"
                case .refuse(let c, let reason): return "refuse(\(c?.rawValue ?? "auto"): \(reason))"
                default: return action.summary
                }
            }.joined(separator: ", ")
            return "t=\(entry.time) \(entry.node) \(change) on \(Self.describe(entry.event)): \(actions)"
        }.joined(separator: "\n")
    }
}
