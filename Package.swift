// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "MirrorCluster",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "mirror", targets: ["Mirror"]),
        .executable(name: "clusterctl", targets: ["ClusterCtl"]),
        .library(name: "ReplFS", targets: ["ReplFS"]),
        .library(name: "ClusterConfig", targets: ["ClusterConfig"]),
        .library(name: "VirtualIP", targets: ["VirtualIP"]),
        .library(name: "ControlChannel", targets: ["ControlChannel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // libfuse3 as a system library (Debian: libfuse3-dev).
        .systemLibrary(
            name: "CFuse3",
            pkgConfig: "fuse3",
            providers: [.apt(["libfuse3-dev"])]
        ),
        // The few libfuse entry points Swift cannot call directly (function-like macros).
        .target(name: "CFuseShim", dependencies: ["CFuse3"]),
        // Linux calls and constants that Swift's Glibc module hides (_GNU_SOURCE only).
        .target(name: "CLinux"),
        .target(
            name: "ReplFS",
            dependencies: [
                "CFuse3", "CFuseShim", "CLinux", "ReplProtocol", "ReplTransport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The replication stream's wire format: framing, handshake, messages; no I/O.
        .target(name: "ReplProtocol", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // The replication connection on TCP: listener, connector, pipelined sender, in-order receiver.
        .target(
            name: "ReplTransport",
            dependencies: ["ReplProtocol", "Threading", .product(name: "Logging", package: "swift-log")]
        ),
        // Plain POSIX threads, a monitor (mutex + condition) and a blocking sleep, for the parts that block in system calls.
        .target(name: "Threading"),
        // The secondary's side of the stream: applies replicated operations to its own copy.
        .target(name: "ReplApply", dependencies: ["ReplProtocol", "ReplFS", "CLinux"]),
        // The cluster file: model, loader and validation; reads only the files it is asked to read.
        .target(
            name: "ClusterConfig",
            dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]
        ),
        // Virtual IPs: addresses added and removed with rtnetlink, gratuitous ARP on a packet socket,
        // and the HTTP health endpoint a load balancer follows where ARP cannot move an address.
        .target(name: "VirtualIP", dependencies: ["Threading"]),
        .executableTarget(
            name: "Mirror",
            dependencies: [
                "ReplFS", "CLinux", "ClusterConfig", "ReplProtocol", "ReplTransport", "ReplApply", "MirrorCore", "VirtualIP",
                "HeartbeatTransport", "ControlChannel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ClusterCtl",
            dependencies: [
                "ControlChannel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The pure cluster logic: generations, connect decisions, the module state machine (no I/O).
        .target(name: "MirrorCore"),
        // UDP heartbeats between the nodes and the witness (service and client): authenticated datagrams, no cluster logic.
        .target(
            name: "HeartbeatTransport",
            dependencies: [
                "MirrorCore", "ClusterConfig", "ReplTransport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The control socket between clusterctl and the daemon: JSON messages, server, client,
        // the status text, the module settings file's format (Glibc and FoundationEssentials only).
        .target(name: "ControlChannel", dependencies: ["Threading"]),
        // Helpers shared by the test targets: seeded generators, scratch directories, tree snapshots, commands,
        // the network namespace lab (node1, node2, client on a bridge), a PostgreSQL server run by the tests.
        .target(name: "TestSupport", dependencies: ["CLinux"], path: "Tests/TestSupport"),
        .testTarget(name: "MirrorCoreTests", dependencies: ["MirrorCore", "TestSupport"]),
        .testTarget(
            name: "ReplFSTests",
            dependencies: [
                "ReplFS", "CLinux", "TestSupport", "ReplProtocol", "ReplTransport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ReplProtocolTests", dependencies: ["ReplProtocol", "TestSupport"]),
        .testTarget(name: "ReplApplyTests", dependencies: ["ReplApply", "ReplProtocol", "CLinux", "TestSupport"]),
        .testTarget(
            name: "ReplTransportTests",
            dependencies: ["ReplTransport", "ReplProtocol", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "VirtualIPTests", dependencies: ["VirtualIP", "TestSupport"]),
        // Also runs the built `mirror witness` (swift build --build-tests builds it too).
        .testTarget(
            name: "HeartbeatTransportTests",
            dependencies: [
                "HeartbeatTransport", "MirrorCore", "ReplTransport", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Two cluster daemons on this machine driven with the built clusterctl (failover, swap, divergence...).
        .testTarget(name: "ClusterTests", dependencies: ["ControlChannel", "TestSupport"]),
        .testTarget(
            name: "ClusterConfigTests",
            dependencies: ["ClusterConfig", "TestSupport"]
        ),
        // Also runs the built `clusterctl` against a server started by the test.
        .testTarget(name: "ControlChannelTests", dependencies: ["ControlChannel", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
