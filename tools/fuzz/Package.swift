// swift-tools-version:6.0
// libFuzzer target over the input decoder: built with `swift build -Xswiftc -sanitize=fuzzer`
// by tools/fuzz.sh, separate from the main package so that its normal build never needs the
// fuzzer runtime.
import PackageDescription

let package = Package(
    name: "nftproxy-fuzz",
    dependencies: [.package(name: "nftproxy", path: "../..")],
    targets: [
        .executableTarget(
            name: "nftproxy-fuzz",
            dependencies: [.product(name: "KubeObjects", package: "nftproxy"), .product(name: "ServiceModel", package: "nftproxy")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
