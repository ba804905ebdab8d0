// swift-tools-version:6.0
import PackageDescription

// An app as the README shows it: it depends on the products `Flipt` and `FliptTesting` only, so its build fails
// when an example needs a module the products do not export, or a type they no longer name. `.ci/run` builds it
// and runs its test. MemberImportVisibility (SE-0444) checks that the members of the engine types re-exported by
// name are reachable with `import Flipt` alone.
let package = Package(
    name: "readme-examples",
    platforms: [.macOS(.v15), .iOS(.v18)],
    dependencies: [
        .package(name: "flipt-offline", path: "../.."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // The README's quick start, its ServiceGroup set-up and the rest of the API it names, compiled.
        .target(
            name: "ReadmeExamples",
            dependencies: [
                .product(name: "Flipt", package: "flipt-offline"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [.enableUpcomingFeature("MemberImportVisibility")]
        ),
        // The README's `FliptTesting` example, run.
        .testTarget(
            name: "ReadmeExamplesTests",
            dependencies: [
                .product(name: "Flipt", package: "flipt-offline"),
                .product(name: "FliptTesting", package: "flipt-offline"),
            ],
            swiftSettings: [.enableUpcomingFeature("MemberImportVisibility")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
