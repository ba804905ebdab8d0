// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "flipt-offline",
    platforms: [.macOS(.v15), .iOS(.v18)],
    products: [
        // One library for apps, and one for their tests. The engine, store, sync, relay and gzip modules are the
        // package's own: what the CLI, the benchmarks and the tests use of them is `package` API, and the engine and
        // sync types that appear in Flipt's API are re-exported one by one (Sources/Flipt/ReexportedTypes.swift).
        .library(name: "Flipt", targets: ["Flipt"]),
        .library(name: "FliptTesting", targets: ["FliptTesting"]),
        .executable(name: "flipt-offline", targets: ["FliptCLI"]),
        .executable(name: "flipt-bench", targets: ["FliptBenchmarks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // TLS with extra trust roots or skip-verify on Linux (FoundationNetworking has no hook for either).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // The error types of async-http-client's gzip decoding, to report them clearly.
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        // SHA-256 for the relay's client tokens, and public keys to match a TLS key with its certificate. Already
        // resolved through async-http-client's graph (at 4.x today); both major versions have the API used here.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Metrics of the relay and of the sync (the library only emits; the CLI bootstraps a backend).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // A span around each fetch (the library only emits; an application bootstraps a tracer). Already resolved
        // through async-http-client's graph.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // The Prometheus backend behind `serve --metrics-listen` (the CLI only).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The system SQLite library, reached through our own module map.
        .systemLibrary(
            name: "CFliptSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        // The system zlib, reached through our own module map (for gzip answers).
        .systemLibrary(name: "CFliptZlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        // gzip encoding (one-shot, and streaming with a flush per message) and decoding on the system zlib.
        .target(name: "FliptGzip", dependencies: ["CFliptZlib"]),
        // The wall clock for evaluation results, read from the CPU's counter where the kernel trusts it.
        .target(name: "CFliptClock"),
        // The allocator's figures (bytes in use, bytes taken from the system), for the soak test's leak check.
        .target(name: "CFliptHeap"),
        // The processor a thread runs on (sched_getcpu), for the per-processor shards of the client's reader gate.
        .target(name: "CFliptProcessor"),
        // The text formats several modules write: JSON string literals and the civil calendar of ISO-8601 times.
        .target(name: "FliptFormats"),
        // Pure evaluation: decode a snapshot document, index it, evaluate. No I/O.
        .target(name: "FliptEngine", dependencies: ["CFliptClock", "FliptFormats"]),
        // SQLite persistence of snapshots: connection, statements, migrator, SnapshotStore.
        .target(
            name: "FliptStore",
            dependencies: [
                "CFliptSQLite", "FliptFormats", .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // HTTP: conditional polling, NDJSON streaming, retry and back-off policies.
        .target(
            name: "FliptSync",
            dependencies: [
                "FliptEngine", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "AsyncHTTPClient", package: "async-http-client", condition: .when(platforms: [.linux])),
                .product(name: "NIOCore", package: "swift-nio", condition: .when(platforms: [.linux])),
                .product(name: "NIOHTTP1", package: "swift-nio", condition: .when(platforms: [.linux])),
                .product(
                    name: "NIOHTTPCompression",
                    package: "swift-nio-extras",
                    condition: .when(platforms: [.linux])
                ),
                .product(name: "NIOPosix", package: "swift-nio", condition: .when(platforms: [.linux])),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(platforms: [.linux])),
            ]
        ),
        // The public client API: FliptClient composes engine, store and sync.
        .target(
            name: "Flipt",
            dependencies: [
                "CFliptHeap", "CFliptProcessor", "FliptEngine", "FliptGzip", "FliptStore", "FliptSync",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // Flags, segments, rules and rollouts built in code, and FliptClients over them with no network or cache
        // file, for apps' tests.
        .target(name: "FliptTesting", dependencies: ["Flipt", "FliptFormats"]),
        // The `flipt-offline` command-line tool.
        .executableTarget(
            name: "FliptCLI",
            dependencies: [
                "Flipt", "FliptEngine", "FliptFormats", "FliptRelay", "FliptStore", "FliptSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The HTTP server behind `flipt-offline serve`: Flipt's snapshot API answered from a snapshot cache.
        .target(
            name: "FliptRelay",
            dependencies: [
                "FliptFormats", "FliptGzip", "FliptStore", .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // A loopback Flipt server with fault injection, and fixtures, for tests and benchmarks.
        .target(
            name: "FliptTestSupport",
            dependencies: [
                "FliptEngine", "FliptFormats", "FliptGzip", .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio", condition: .when(platforms: [.linux])),
                .product(name: "NIOPosix", package: "swift-nio", condition: .when(platforms: [.linux])),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(platforms: [.linux])),
                .product(name: "NIOTLS", package: "swift-nio", condition: .when(platforms: [.linux])),
            ]
        ),
        // Benchmarks against the official engine (loaded at run time from its shared library).
        .executableTarget(
            name: "FliptBenchmarks",
            dependencies: [
                "CFliptHeap", "Flipt", "FliptEngine", "FliptFormats", "FliptGzip", "FliptStore",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "FliptEngineTests",
            dependencies: ["CFliptClock", "FliptEngine", "FliptFormats", "FliptTestSupport"]
        ),
        .testTarget(name: "FliptStoreTests", dependencies: ["FliptStore", "FliptEngine", "FliptTestSupport"]),
        .testTarget(
            name: "FliptSyncTests",
            dependencies: [
                "FliptSync", "FliptEngine", "FliptGzip", "FliptTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "FliptTests",
            dependencies: [
                "Flipt", "FliptEngine", "FliptGzip", "FliptStore", "FliptSync", "FliptTesting", "FliptTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
        .testTarget(
            name: "FliptTestingTests",
            dependencies: ["Flipt", "FliptEngine", "FliptTesting", "FliptTestSupport"]
        ),
        .testTarget(name: "FliptCLITests", dependencies: ["FliptTestSupport", "FliptTesting"]),
        .testTarget(
            name: "FliptRelayTests",
            dependencies: [
                "CFliptHeap", "FliptGzip", "FliptRelay", "FliptStore", "FliptTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "FliptGzipTests", dependencies: ["FliptGzip"]),
        // Runs the built `flipt-bench soak-client` against a flapping loopback server, killing it at random.
        .testTarget(name: "FliptSoakTests", dependencies: ["FliptEngine", "FliptStore", "FliptTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer harnesses of Tests/Fuzz (the snapshot decoder, the NDJSON stream splitter, the JSON-lines request
// parser of `eval`, the cache import path), declared only when Tests/Fuzz/run.sh builds them (FLIPT_FUZZ=1, with
// `-sanitize=fuzzer,address`), so that ordinary builds carry no fuzz-only targets. They belong to this package so
// that they reach the modules' package API.
if Context.environment["FLIPT_FUZZ"] == "1" {
    let fuzz = "Tests/Fuzz/Sources/"
    package.targets += [
        // Declares libFuzzer's `LLVMFuzzerRunDriver`, which the harnesses' entry points call.
        .target(name: "CLibFuzzer", path: fuzz + "CLibFuzzer"),
        // The driver entry point, invariant checks and input slicing shared by the harnesses.
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], path: fuzz + "FuzzSupport"),
        .executableTarget(
            name: "DocumentFuzzer",
            dependencies: ["FuzzSupport", "FliptEngine"],
            path: fuzz + "DocumentFuzzer"
        ),
        .executableTarget(
            name: "StreamFuzzer",
            dependencies: ["FuzzSupport", "FliptSync", "FliptEngine"],
            path: fuzz + "StreamFuzzer"
        ),
        .executableTarget(
            name: "RequestLineFuzzer",
            dependencies: ["FuzzSupport", "FliptEngine"],
            path: fuzz + "RequestLineFuzzer"
        ),
        .executableTarget(
            name: "CacheImportFuzzer",
            dependencies: ["FuzzSupport", "FliptEngine", "FliptStore"],
            path: fuzz + "CacheImportFuzzer"
        ),
    ]
}
