// swift-tools-version:6.0
import PackageDescription

// libFuzzer harnesses for the snapshot decoder, the NDJSON stream splitter, the JSON-lines request parser of
// `eval` and the cache import path. A package of its own, so the main package carries no fuzz-only targets;
// `run.sh` beside this file builds it with `-sanitize=fuzzer,address` and runs each harness on its corpus.
let package = Package(
    name: "flipt-offline-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "flipt-offline", path: "../..")
    ],
    targets: [
        // Declares libFuzzer's `LLVMFuzzerRunDriver`, which the harnesses' entry points call.
        .target(name: "CLibFuzzer"),
        // The driver entry point, invariant checks and input slicing shared by the harnesses.
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"]),
        .executableTarget(
            name: "DocumentFuzzer",
            dependencies: ["FuzzSupport", .product(name: "FliptEngine", package: "flipt-offline")]
        ),
        .executableTarget(
            name: "StreamFuzzer",
            dependencies: [
                "FuzzSupport", .product(name: "FliptSync", package: "flipt-offline"),
                .product(name: "FliptEngine", package: "flipt-offline"),
            ]
        ),
        .executableTarget(
            name: "RequestLineFuzzer",
            dependencies: ["FuzzSupport", .product(name: "FliptEngine", package: "flipt-offline")]
        ),
        .executableTarget(
            name: "CacheImportFuzzer",
            dependencies: [
                "FuzzSupport", .product(name: "FliptEngine", package: "flipt-offline"),
                .product(name: "FliptStore", package: "flipt-offline"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
