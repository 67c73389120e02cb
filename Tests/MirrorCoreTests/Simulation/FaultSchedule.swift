import MirrorCore

/// The seeded generator of what happens to a simulated cluster besides time passing: link
/// changes (drops, delays, duplicates, one-way and full partitions), witness outages, crashes and
/// restarts, checker failures, dying processes, and operator commands at any moment.
extension SimulatedCluster {
    static let commandWeights: [(Command, Int)] = [(.start, 30), (.stop, 15), (.prim, 8), (.second, 8), (.swap, 12), (.restart, 10)]

    /// One tick of faults and commands, then the tick itself.
    func faultyTick() {
        if random.chance(0.03) { changeNodeLinks() }
        if arbiter != nil, random.chance(0.02) {
            network.witnessLinks[random.int(in: 0...1)] = randomLinkMode()
        }
        for index in nodes.indices {
            if nodes[index].isUp {
                if random.chance(0.006) { crash(index) }
            } else {
                nodes[index].downFor -= 1
                if nodes[index].downFor <= 0 { boot(index, start: random.chance(0.7)) }
            }
        }
        if random.chance(0.04) {
            let index = random.int(in: 0...1)
            if nodes[index].isUp { command(index, randomCommand()) }
        }
        if random.chance(0.02) {
            let index = random.int(in: 0...1)
            step(index, random.chance(0.5) ? .checkerDown("tcp") : .checkerUp("tcp"))
        }
        for index in nodes.indices where nodes[index].isServing && random.chance(0.005) {
            step(index, .processDied)
        }
        if random.chance(0.005) { step(random.int(in: 0...1), .peerLost) }
        tick()
    }

    private func changeNodeLinks() {
        if random.chance(0.5) {
            let mode = randomLinkMode()
            network.nodeLinks = [mode, mode]
        } else {
            network.nodeLinks[random.int(in: 0...1)] = randomLinkMode()
        }
    }

    private func randomLinkMode() -> LinkMode {
        let roll = random.int(in: 0...99)
        return roll < 60 ? .up : roll < 80 ? .lossy : .down
    }

    private func randomCommand() -> Command {
        var roll = random.int(in: 0...(Self.commandWeights.map(\.1).reduce(0, +) - 1))
        for (command, weight) in Self.commandWeights {
            if roll < weight { return command }
            roll -= weight
        }
        return .start
    }
}
