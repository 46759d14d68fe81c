// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "nftproxy",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "nftproxy", targets: ["nftproxy"]),
        .executable(name: "nftproxy-echo", targets: ["nftproxy-echo"]),
        // The input decoder and its model, for the fuzz target in tools/fuzz (a package of its own).
        .library(name: "KubeObjects", targets: ["KubeObjects"]),
        .library(name: "ServiceModel", targets: ["ServiceModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C: libnftnl + libmnl + linux/netfilter headers.
        .systemLibrary(
            name: "CNetfilter",
            pkgConfig: "libnftnl",
            providers: [.apt(["libnftnl-dev", "libmnl-dev"])]
        ),
        // Sockets, netns, batches, ACKs: the only module that touches C pointers.
        .target(name: "Netlink", dependencies: ["CNetfilter"]),
        // Conntrack list/delete over nfnetlink_conntrack (no `conntrack` binary).
        .target(name: "Conntrack", dependencies: ["Netlink", "CNetfilter", "ServiceModel"]),
        // Ruleset IR, nft text renderer, netlink encoder/decoder, diff.
        .target(name: "Nftables", dependencies: ["Netlink", "CNetfilter", "ServiceModel"]),
        // Kubernetes-free model of what must be served.
        .target(name: "ServiceModel"),
        // Decoding of Service / EndpointSlice objects (YAML or JSON) into ServiceModel.
        .target(name: "KubeObjects", dependencies: ["ServiceModel", .product(name: "Yams", package: "Yams")]),
        // ServiceMap + NodeConfig -> Ruleset.
        .target(name: "ProxyCompiler", dependencies: ["ServiceModel", "Nftables", "Conntrack", "Netlink"]),
        // Network-namespace topology for end-to-end tests and the demo.
        .target(name: "Sandbox"),
        .executableTarget(
            name: "nftproxy",
            dependencies: [
                "ServiceModel", "KubeObjects", "ProxyCompiler", "Nftables", "Netlink", "Conntrack", "Sandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Tiny TCP/UDP echo server and client used inside sandbox namespaces.
        .executableTarget(name: "nftproxy-echo"),
        // Scale benchmark (docs/benchmarks.md): programs N services x M endpoints into a private namespace.
        .executableTarget(
            name: "nftproxy-bench",
            dependencies: ["ServiceModel", "ProxyCompiler", "Nftables", "Netlink", "Sandbox",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "tools/bench"
        ),
        // Service maps for tests of several modules (not part of any product).
        .target(name: "ServiceTestSupport", dependencies: ["ServiceModel"], path: "Tests/ServiceTestSupport"),
        .testTarget(name: "ServiceModelTests", dependencies: ["ServiceModel"]),
        .testTarget(name: "KubeObjectsTests", dependencies: ["KubeObjects", "ServiceModel"]),
        .testTarget(name: "NftablesTests", dependencies: ["Nftables", "Netlink", "ServiceModel"]),
        .testTarget(
            name: "ProxyCompilerTests",
            dependencies: ["ProxyCompiler", "ServiceModel", "KubeObjects", "Nftables", "ServiceTestSupport"],
            resources: [.copy("Golden")]
        ),
        .testTarget(name: "KernelTests", dependencies: ["Nftables", "Netlink", "Conntrack", "Sandbox", "ProxyCompiler", "ServiceModel",
                                                     "ServiceTestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["Sandbox", "ServiceModel", "ProxyCompiler", "Nftables"]),
    ]
)
