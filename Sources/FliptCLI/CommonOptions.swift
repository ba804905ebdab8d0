import ArgumentParser
import Flipt
import FliptStore
import FliptSync
import Foundation

/// `--cache PATH`: the cache file every command reads or writes.
struct CacheOptionGroup: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The cache file (default: $FLIPT_OFFLINE_CACHE, else the per-user default the library uses).",
            valueName: "path"
        )
    )
    var cache: String?

    /// The cache file to use.
    var path: String { cache ?? CacheOptions.defaultPath }
}

/// The client options, named as in the library and the official SDKs, the same on every command.
///
/// Credentials come from `FLIPT_CLIENT_TOKEN` / `FLIPT_JWT` or from `--client-token-file` / `--jwt-file`, never
/// from the command line itself, where other users of the machine could read them in the process list.
struct ClientOptionGroup: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The Flipt server (default http://localhost:8080).",
            discussion: "Commands that only read the cache may leave it out when the cache holds one entry for "
                + "the namespace."
        )
    )
    var url: String?

    @Option(name: .long, help: "The namespace.")
    var namespace = "default"

    @Option(name: .long, help: "The environment (Flipt v2).")
    var environment = "default"

    @Option(name: .long, help: "The reference (branch, tag or commit; Flipt v1 with git storage).")
    var reference: String?

    @Option(name: .long, help: "A total limit per request attempt, e.g. 500ms, 10s (default: none).")
    var requestTimeout: DurationArgument?

    @Option(name: .long, help: "How often to poll, e.g. 30s, 2m, 500ms.")
    var updateInterval = DurationArgument(.seconds(120), text: "120s")

    @Option(name: .long, help: "polling or streaming.")
    var fetchMode: FetchMode = .polling

    @Option(name: .long, help: "fail or fallback.")
    var errorStrategy: ErrorStrategy = .fail

    @Option(name: .long, help: ArgumentHelp("Read the client token from this file.", valueName: "path"))
    var clientTokenFile: String?

    @Option(name: .long, help: ArgumentHelp("Read the JWT from this file.", valueName: "path"))
    var jwtFile: String?

    @Option(name: .long, help: ArgumentHelp("Trust this CA certificate (PEM) as well.", valueName: "path"))
    var caCert: String?

    @ArgumentParser.Flag(name: .long, help: "Accept any server certificate (tests against self-signed servers only).")
    var insecureSkipVerify = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The largest snapshot document accepted, e.g. 64MiB, 200MiB, 1GiB; a larger answer fails the fetch.",
            valueName: "size"
        )
    )
    var maxDocumentSize = SizeArgument(bytes: SyncConfiguration.defaultMaximumDocumentSize, text: "64MiB")

    /// The server URL, or the library default when none was given.
    var resolvedURL: String { url ?? ClientOptions().url }

    /// The credential, from a file or the environment; a file wins over the environment.
    func authentication(
        environment variables: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> Authentication {
        if clientTokenFile != nil && jwtFile != nil {
            throw ValidationError("Give either --client-token-file or --jwt-file, not both.")
        }
        if let clientTokenFile { return .clientToken(try Self.readSecret(clientTokenFile, what: "client token")) }
        if let jwtFile { return .jwt(try Self.readSecret(jwtFile, what: "JWT")) }
        let token = variables["FLIPT_CLIENT_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let jwt = variables["FLIPT_JWT"].flatMap { $0.isEmpty ? nil : $0 }
        switch (token, jwt) {
        case (.some, .some):
            throw ValidationError("Both FLIPT_CLIENT_TOKEN and FLIPT_JWT are set; unset one of them.")
        case (.some(let token), nil): return .clientToken(token)
        case (nil, .some(let jwt)): return .jwt(jwt)
        case (nil, nil): return .none
        }
    }

    private static func readSecret(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("Cannot read the \(what) file \(path); check that it exists and is readable.")
        }
        let secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty else { throw ValidationError("The \(what) file \(path) is empty.") }
        return secret
    }

    /// The TLS trust settings these flags name.
    var tlsOptions: TLSOptions {
        var tls = TLSOptions(insecureSkipVerify: insecureSkipVerify)
        if let caCert { tls.additionalTrustRoots = [.pemFile(caCert)] }
        return tls
    }

    /// Library options for these flags and the given cache file.
    func clientOptions(cachePath: String?) throws -> ClientOptions {
        var options = ClientOptions(
            url: resolvedURL,
            environment: environment,
            requestTimeout: requestTimeout?.duration,
            updateInterval: updateInterval.duration,
            authentication: try authentication(),
            reference: reference,
            fetchMode: fetchMode,
            errorStrategy: errorStrategy,
            tls: tlsOptions,
            cache: CacheOptions(location: cachePath.map { .file($0) } ?? .disabled)
        )
        options.maximumDocumentSize = maxDocumentSize.bytes
        return options
    }

    /// The cache key these flags name. Without `--url`, the one entry of the cache for this namespace,
    /// environment and reference (entries with a snapshot win over entries with only failed attempts); an error
    /// that lists the candidates when there are none or several.
    func key(in store: SnapshotStore) throws -> SnapshotKey {
        if let url {
            let parsed: URL
            do throws(FliptError) {
                parsed = try SnapshotSync.serverURL(url)
            } catch {
                throw ValidationError(error.message)
            }
            return SnapshotKey(url: parsed, environment: environment, namespace: namespace, reference: reference)
        }
        let matching = try store.entries().filter {
            $0.key.namespace == namespace && $0.key.environment == environment
                && $0.key.reference == (reference ?? "")
        }
        // Entries that only logged failed attempts (a mistyped --url, say) do not compete with one that has data.
        let withSnapshots = matching.filter { $0.lastGood != nil }
        let candidates = (withSnapshots.isEmpty ? matching : withSnapshots).map(\.key)
        switch candidates.count {
        case 1:
            return candidates[0]
        case 0:
            throw CommandFailure(
                ExitStatus.noEntry,
                "the cache \(store.path) holds no snapshot for namespace \(namespace) (environment \(environment)); "
                    + "run `flipt-offline sync` first, or `flipt-offline cache ls` to see what it holds"
            )
        default:
            let servers = candidates.map(\.serverURL).joined(separator: ", ")
            throw CommandFailure(
                ExitStatus.usage,
                "the cache holds namespace \(namespace) from several servers (\(servers)); choose one with --url"
            )
        }
    }
}

/// A duration on the command line: `250ms`, `30s`, `2m`, `1h`, `7d`, or a plain number of seconds (`1.5`).
struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    let duration: Duration
    let text: String

    init(_ duration: Duration, text: String) {
        self.duration = duration
        self.text = text
    }

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        guard let seconds = scaledNumber(argument, units: units), seconds * 1000 < Double(Int64.max) else {
            return nil
        }
        duration = .milliseconds(Int64((seconds * 1000).rounded()))
        text = argument
        guard duration > .zero else { return nil }
    }

    var description: String { text }
    var defaultValueDescription: String { text }
}

/// `text`'s number times the factor of the first unit in `units` it ends with (1 with none), when it is finite
/// and positive.
private func scaledNumber(_ text: String, units: [(suffix: String, factor: Double)]) -> Double? {
    var number = Substring(text)
    var scale = 1.0
    for (suffix, factor) in units where text.hasSuffix(suffix) {
        number = text.dropLast(suffix.count)
        scale = factor
        break
    }
    guard let value = Double(number), value.isFinite, value > 0 else { return nil }
    return value * scale
}

/// A size on the command line: a number of bytes, or one with a unit: `KiB`, `MiB`, `GiB` (or `K`, `M`, `G`),
/// `KB`, `MB`, `GB` (powers of 1,000), `B`; any case.
struct SizeArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    let bytes: Int
    let text: String

    init(bytes: Int, text: String) {
        self.bytes = bytes
        self.text = text
    }

    init?(argument: String) {
        let units: [(String, Double)] = [
            ("kib", 1024), ("mib", 1_048_576), ("gib", 1_073_741_824), ("kb", 1e3), ("mb", 1e6), ("gb", 1e9),
            ("k", 1024), ("m", 1_048_576), ("g", 1_073_741_824), ("b", 1),
        ]
        guard let value = scaledNumber(argument.lowercased(), units: units), value < Double(Int.max) else {
            return nil
        }
        bytes = Int(value.rounded())
        text = argument
    }

    var description: String { text }
    var defaultValueDescription: String { text }
}

extension FetchMode: ExpressibleByArgument {}
extension ErrorStrategy: ExpressibleByArgument {}
