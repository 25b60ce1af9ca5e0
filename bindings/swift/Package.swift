// swift-tools-version:5.9
// The edgekeep Swift package: the generated Swift API over the XCFramework that
// build-xcframework.sh builds (run it first, on a Mac with Xcode and rustup).
import PackageDescription

let package = Package(
    name: "EdgeKeep",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "EdgeKeep", targets: ["EdgeKeep"]),
    ],
    targets: [
        .binaryTarget(name: "EdgeKeepFFI", path: "build/EdgeKeepFFI.xcframework"),
        .target(name: "EdgeKeep", dependencies: ["EdgeKeepFFI"], path: "Sources/EdgeKeep"),
    ]
)
