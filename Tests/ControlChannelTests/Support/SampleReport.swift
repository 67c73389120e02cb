import ControlChannel

/// A status report with every field used: a module failed over to node1, one waiting on node1.
let sampleReport = ClusterStatusReport(
    node: "node1", peer: "node2",
    modules: [
        ModuleReport(
            name: "AM", localState: "PRIM", peerState: "SECOND", peerVisible: true,
            generations: "current=5F3A9C21D0E4B817 history=0A1B2C3D4E5F6071", upToDate: true,
            resync: "42% (1.2 of 2.9 GiB), about 3 min left", boot: false, errdEnabled: false,
            checkers: [
                CheckerReport(name: "pg-port", kind: "tcp", enabled: true, up: true),
                CheckerReport(name: "gateway", kind: "ping", enabled: true, up: false),
                CheckerReport(name: "disk", kind: "custom", enabled: false, up: nil),
                CheckerReport(name: "eth0", kind: "interface", enabled: true, up: nil),
            ],
            virtualIPs: ["192.168.1.10/24", "192.168.2.10/24"],
            lastFailover: FailoverTimeline(steps: [
                TimelineStep(name: "fault seen", atMilliseconds: 0),
                TimelineStep(name: "peer declared lost", atMilliseconds: 3012),
                TimelineStep(name: "promoted", atMilliseconds: 3015),
                TimelineStep(name: "virtual IP added", atMilliseconds: 3140),
                TimelineStep(name: "application started", atMilliseconds: 10480),
            ]),
            notes: ["node2 refused as primary: its copy is older (generation 0A1B2C3D4E5F6071)"]),
        ModuleReport(
            name: "DB", localState: "WAIT", peerState: nil, peerVisible: false,
            generations: "current=77E1", upToDate: false,
            notes: ["waiting for node2 (up to 60 s) before serving alone"]),
    ])
