import MirrorCore

/// The properties the simulation checks after every step and every tick.
extension SimulatedCluster {
    /// Never two serving nodes with a witness; never a serving copy that is not up to date.
    func checkServingNodes() {
        let serving = nodes.indices.filter { nodes[$0].isServing }
        if settings.witness != nil, serving.count > 1 {
            violation("both nodes serve although a witness is configured: \(states)")
        }
        for index in serving where nodes[index].machine?.generations?.upToDate != true {
            violation("\(nodes[index].name) serves with a copy that is not up to date")
        }
    }

    /// Without a witness: two serving nodes that see each other over a lossless link settle
    /// within two timeouts.
    func checkAfterTick() {
        guard settings.witness == nil else { return }
        let bothServe = nodes.allSatisfy(\.isServing)
        bothServingWhileConnected = bothServe && network.nodesFullyConnected ? bothServingWhileConnected + 1 : 0
        if bothServingWhileConnected > 2 * settings.peerTimeoutTicks {
            violation("both nodes serve while they see each other for \(bothServingWhileConnected) ticks")
        }
    }

    /// Entering a serving state (mounting read-write): with a witness, the copy holds every
    /// acknowledged write unless the operator forced it (`prim`), which makes it the reference.
    func checkServingEntry(_ index: Int) {
        let node = nodes[index]
        if node.primAccepted {
            nodes[index].primAccepted = false
            reference = node.content
        } else if settings.witness != nil, node.content != reference {
            violation("\(node.name) serves without every acknowledged write (content \(node.content), reference \(reference))")
        }
    }

    /// Generations only move forward: a disk never returns to a current generation it left, and
    /// forgets its history only after the operator's `second`.
    func checkPersist(_ index: Int, _ new: DataGenerations) {
        let old = nodes[index].disk
        guard new.current != old.current else { return }
        if new.current.isJustCreated {
            if !nodes[index].secondAccepted { violation("\(nodes[index].name) discarded its history without the operator's second") }
            nodes[index].secondAccepted = false
            return
        }
        if nodes[index].currentsSeen.contains(new.current) {
            violation("\(nodes[index].name) went back to generation \(new.current) (\(old) -> \(new))")
        }
        nodes[index].currentsSeen.insert(new.current)
    }

    /// A resync towards this node never starts from a copy it diverged from.
    func checkResyncTowardsMe(_ index: Int) {
        let decision = compareGenerations(local: nodes[index].disk, peer: nodes[1 - index].disk)
        if ![.targetWithChangeMap, .behindUnknownChanges].contains(decision.outcome) {
            violation("\(nodes[index].name) starts receiving a resync although \(decision)")
        }
    }

    /// Persisting comes before mounting read-write or adding the VIP.
    func checkPersistedBeforeServing(_ index: Int, _ what: String) {
        if nodes[index].disk != nodes[index].machine?.generations {
            violation("\(nodes[index].name) was about to \(what) before persisting its generations")
        }
    }
}
