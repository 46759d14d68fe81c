// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "nftproxy",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "nftproxy", targets: ["nftproxy"]),
        .executable(name: "nftproxy-echo", targets: ["nftproxy-echo"]),
        .executable(name: "nftproxy-demo", targets: ["nftproxy-demo"]),
        .executable(name: "nftproxy-apiserver", targets: ["nftproxy-apiserver"]),
        // The input decoder and its model, for the fuzz target in tools/fuzz (a package of its own).
        .library(name: "KubeObjects", targets: ["KubeObjects"]),
        .library(name: "ServiceModel", targets: ["ServiceModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // C: libnftnl + libmnl + linux/netfilter headers.
        .systemLibrary(
            name: "CNetfilter",
            pkgConfig: "libnftnl",
            providers: [.apt(["libnftnl-dev", "libmnl-dev"])]
        ),
        // The wire layer, and the only module that imports CNetfilter: sockets, netns,
        // batches, ACKs, the attribute reader/writer shared by nf_tables and conntrack,
        // typed nf_tables objects and expressions (owned libnftnl wrappers inside), and
        // the kernel's numbers by name.
        .target(name: "Netlink", dependencies: ["CNetfilter"]),
        // Conntrack list/delete over nfnetlink_conntrack (no `conntrack` binary), through Netlink.
        .target(name: "Conntrack", dependencies: ["Netlink", "ServiceModel"]),
        // Ruleset IR, nft text renderer, IR <-> wire encoder/decoder, diff, sync.
        .target(name: "Nftables", dependencies: ["Netlink", "ServiceModel"]),
        // libyaml's event parser (Debian libyaml-dev), read by KubeObjects' YAMLReader.
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // Kubernetes-free model of what must be served.
        .target(name: "ServiceModel"),
        // Decoding of Service / EndpointSlice objects (YAML or JSON) into ServiceModel.
        .target(name: "KubeObjects", dependencies: ["ServiceModel", "CYAML"]),
        // ServiceMap + NodeConfig -> Ruleset, whole or per changed service: pure, no kernel access.
        .target(name: "ProxyCompiler", dependencies: ["ServiceModel", "Nftables"]),
        // The proxy engine: ServiceProxy (full and incremental applies, fallbacks, retries, set
        // sizes, stale conntrack cleanup, reports) against the ProxyKernel protocol, and
        // NetlinkKernel, that protocol over nf_tables and conntrack netlink.
        .target(name: "ProxyEngine", dependencies: ["ProxyCompiler", "Nftables", "Conntrack", "Netlink", "ServiceModel"]),
        // FakeKernel: a transactional in-memory ProxyKernel for tests (never linked by a product).
        .target(name: "ProxyEngineTesting", dependencies: ["ProxyEngine", "Nftables", "Conntrack", "Netlink", "ServiceModel"]),
        // Follows one packet through a Ruleset and says what happens to it (`nftproxy explain`).
        .target(name: "PacketTrace", dependencies: ["Nftables", "ServiceModel", "ProxyCompiler"]),
        // The `run` daemon's parts: sync loop, health (/healthz, /livez), Prometheus metrics,
        // the HTTP endpoints serving them, configuration and logging.
        .target(
            name: "ProxyDaemon",
            dependencies: [
                "ProxyEngine", "ProxyCompiler", "Nftables", "Netlink", "ServiceModel", "KubeObjects", "KubeClient",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Kubernetes API client: kubeconfig / in-cluster configuration, paged lists and watches.
        .target(
            name: "KubeClient",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The project's stand-in Kubernetes API server (tests, tools, benchmarks).
        .target(
            name: "KubeAPIStandIn",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "nftproxy-apiserver",
            dependencies: ["KubeAPIStandIn", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Network-namespace topology for end-to-end tests and the demo.
        .target(name: "Sandbox"),
        .executableTarget(
            name: "nftproxy",
            dependencies: [
                "ServiceModel", "KubeObjects", "ProxyCompiler", "ProxyEngine", "Nftables", "PacketTrace",
                "ProxyDaemon", "KubeClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The echo-server NodePort demo in a sandbox of network namespaces (`nftproxy demo` runs it).
        .executableTarget(
            name: "nftproxy-demo",
            dependencies: [
                "ServiceModel", "KubeObjects", "ProxyCompiler", "ProxyEngine", "Nftables", "Sandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Tiny TCP/UDP echo server and client used inside sandbox namespaces.
        .executableTarget(name: "nftproxy-echo"),
        // Scale benchmark (docs/benchmarks.md): programs N services x M endpoints into a private namespace.
        .executableTarget(
            name: "nftproxy-bench",
            dependencies: ["ServiceModel", "ProxyCompiler", "ProxyEngine", "ProxyDaemon", "Nftables", "Netlink", "Sandbox",
                           "KubeAPIStandIn", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "NIOCore", package: "swift-nio")],
            path: "tools/bench"
        ),
        // Service maps and sample tables for tests of several modules (not part of any product).
        .target(name: "ServiceTestSupport", dependencies: ["ServiceModel", "Nftables"], path: "Tests/ServiceTestSupport"),
        .testTarget(name: "ServiceModelTests", dependencies: ["ServiceModel"]),
        .testTarget(name: "KubeObjectsTests", dependencies: ["KubeObjects", "ServiceModel", "ServiceTestSupport"]),
        .testTarget(name: "KubeClientTests", dependencies: ["KubeClient"]),
        // The stand-in checked with kubectl and the Python client, and KubeClient against it (no root).
        .testTarget(name: "KubeAPIStandInTests", dependencies: ["KubeAPIStandIn", "KubeClient"]),
        // Tests that need neither root nor a kernel, one target per module.
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "CNetfilter", "ServiceModel"]),
        .testTarget(name: "ConntrackTests", dependencies: ["Conntrack", "Netlink", "ServiceModel"]),
        .testTarget(name: "NftablesTests", dependencies: ["Nftables", "Netlink", "ServiceModel", "ServiceTestSupport"],
                    exclude: ["Golden"]),
        // The `nftproxy` command line run as a user does (`dump` needs no privileges).
        .testTarget(name: "CommandLineTests", dependencies: ["Sandbox"]),
        .testTarget(
            name: "ProxyCompilerTests",
            dependencies: ["ProxyCompiler", "ServiceModel", "KubeObjects", "Nftables", "ServiceTestSupport"],
            // Read from the source tree (#filePath), not a bundle: no resources to copy.
            exclude: ["Golden"]
        ),
        // The daemon's parts against FakeKernel and on loopback: no root.
        .testTarget(name: "ProxyDaemonTests", dependencies: ["ProxyDaemon", "ProxyEngine", "ProxyEngineTesting", "Netlink",
                                                          "Nftables", "Conntrack", "ServiceModel", "KubeObjects", "ServiceTestSupport",
                                                          .product(name: "NIOCore", package: "swift-nio"),
                                                          .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "PacketTraceTests", dependencies: ["PacketTrace", "ProxyCompiler", "ServiceModel", "Nftables"]),
        // The engine against FakeKernel: no root, no kernel.
        .testTarget(
            name: "ProxyEngineTests",
            dependencies: ["ProxyEngine", "ProxyEngineTesting", "ProxyCompiler", "Nftables", "Conntrack", "Netlink",
                           "ServiceModel", "ServiceTestSupport"]
        ),
        .testTarget(name: "KernelTests", dependencies: ["Nftables", "Netlink", "Conntrack", "Sandbox", "ProxyCompiler", "ProxyEngine",
                                                     "ProxyEngineTesting", "ServiceModel", "ServiceTestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["Sandbox", "KubeAPIStandIn", "ServiceModel", "ProxyCompiler", "ProxyEngine", "Nftables"]),
    ]
)
