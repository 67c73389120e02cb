/// Rules that span several tables: unique names and addresses, directories that never overlap.
enum ClusterRules {
    static func check(nodes: [Decoded<Node>], modules: [Decoded<Module>], log: IssueLog) {
        checkNodes(nodes, log: log)
        checkModules(modules, log: log)
    }

    private static func checkNodes(_ nodes: [Decoded<Node>], log: IssueLog) {
        for (index, entry) in nodes.enumerated() {
            let node = entry.value
            for earlier in nodes[..<index] {
                if earlier.value.name == node.name {
                    log.add(entry.position, "name \"\(node.name)\" is also the name of \(earlier.position): each node needs its own")
                }
                for address in node.replicationAddresses where earlier.value.replicationAddresses.contains(address) {
                    log.add(entry.context, "replication address \(address) is also one of \(earlier.context)'s")
                }
                for address in node.heartbeatAddresses where earlier.value.heartbeatAddresses.contains(address) {
                    log.add(entry.context, "heartbeat address \(address) is also one of \(earlier.context)'s")
                }
                if let prefix = node.pathPrefix, prefix == earlier.value.pathPrefix {
                    log.add(entry.context, "path_prefix \"\(prefix)\" is also \(earlier.context)'s: the two copies would be one")
                }
                let counts = (mine: node.heartbeatAddresses.count, theirs: earlier.value.heartbeatAddresses.count)
                if counts.mine > 0, counts.theirs > 0, counts.mine != counts.theirs {
                    log.add(entry.context, "\(counts.mine) heartbeat address\(counts.mine == 1 ? "" : "es"), \(earlier.context) has "
                        + "\(counts.theirs): heartbeat paths pair the nodes' addresses by position (first with first...), "
                        + "give both nodes as many")
                }
            }
        }
    }

    private static func checkModules(_ modules: [Decoded<Module>], log: IssueLog) {
        for (index, entry) in modules.enumerated() {
            let module = entry.value
            for earlier in modules[..<index] {
                if earlier.value.name == module.name {
                    log.add(entry.position, "name \"\(module.name)\" is also the name of \(earlier.position): module names are unique in a cluster")
                }
                for directory in module.directories {
                    for other in earlier.value.directories where AbsolutePath.overlap(directory, other) {
                        log.add(entry.context, "directories: \"\(directory)\" overlaps \"\(other)\" of \(earlier.context): "
                            + "a directory is replicated by one module only")
                    }
                }
                for vip in module.virtualIPs where earlier.value.virtualIPs.contains(where: { $0.address == vip.address }) {
                    log.add(entry.context, "virtual IP \(vip.address) is also one of \(earlier.context)'s")
                }
            }
        }
    }
}
