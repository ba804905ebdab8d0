import Flipt
import FliptEngine
import Foundation

/// `flipt-bench changes`: what telling the flag changes of a snapshot replacement costs, against decoding the
/// same document, side by side in one run.
///
///     swift build -c release --product flipt-bench
///     .build/release/flipt-bench changes [--flags 10000] [--rounds 15] [--edit-every 100]
///
/// Two revisions of a generated document (`GeneratedDocument`, seed 7): the second edits the description of every
/// `--edit-every`-th flag. Each round times, on the second revision: decoding it into a `Snapshot`; reading its
/// flag fingerprints; comparing them with the first revision's; and a whole in-process replacement through a
/// `FliptClient` (decode, fingerprints, comparison, swap, event), alternating between the revisions. Medians.
enum ChangeBenchmark {
    static func run(arguments: [String]) {
        var flagCount = 10_000
        var rounds = 15
        var editEvery = 100
        var index = 0
        while index < arguments.count {
            let value = index + 1 < arguments.count ? Int(arguments[index + 1]) : nil
            switch (arguments[index], value) {
            case ("--flags", .some(let number)): flagCount = number
            case ("--rounds", .some(let number)): rounds = number
            case ("--edit-every", .some(let number)) where number > 0: editEvery = number
            default:
                print("usage: flipt-bench changes [--flags N] [--rounds N] [--edit-every N]")
                return
            }
            index += 2
        }
        do {
            try measure(flagCount: flagCount, rounds: rounds, editEvery: editEvery)
        } catch {
            print("flipt-bench changes: \(error)")
            exit(1)
        }
    }

    /// `document` with the description of every `every`-th flag set to "edited". Generated documents hold exactly
    /// one `"description":""` per flag, in flag order.
    static func edited(_ document: [UInt8], every: Int) -> [UInt8] {
        let marker = Array(#""description":"""#.utf8)
        let replacement = Array(#""description":"edited""#.utf8)
        var result: [UInt8] = []
        result.reserveCapacity(document.count + document.count / 100)
        var flag = 0
        var position = 0
        while position < document.count {
            if document[position] == marker[0], position + marker.count <= document.count,
                document[position..<(position + marker.count)].elementsEqual(marker)
            {
                result.append(contentsOf: flag % every == 0 ? replacement : marker)
                flag += 1
                position += marker.count
            } else {
                result.append(document[position])
                position += 1
            }
        }
        return result
    }

    static func measure(flagCount: Int, rounds: Int, editEvery: Int) throws {
        let first = GeneratedDocument.make(flagCount: flagCount, seed: 7)
        let second = edited(first, every: editEvery)
        guard let firstFingerprints = FlagFingerprints(document: first) else {
            throw BenchmarkFailure("the generated document's flags could not be read")
        }
        let expectedChanges = (flagCount + editEvery - 1) / editEvery
        let check = firstFingerprints.changes(to: FlagFingerprints(document: second)!)
        guard check.changed.count == expectedChanges, check.added.isEmpty, check.removed.isEmpty else {
            throw BenchmarkFailure("expected \(expectedChanges) changed flags, found \(check.changed.count)")
        }

        let data = TestDataClient(document: first)
        var decode: [Double] = []
        var fingerprint: [Double] = []
        var compare: [Double] = []
        var replace: [Double] = []
        var replaceChanges = 0
        for round in 0..<rounds {
            decode.append(
                milliseconds {
                    blackHole((try? Snapshot(document: second))?.flagCount ?? 0)
                }
            )
            var fingerprints: FlagFingerprints?
            fingerprint.append(milliseconds { fingerprints = FlagFingerprints(document: second) })
            compare.append(milliseconds { blackHole(firstFingerprints.changes(to: fingerprints!).changed.count) })
            let target = round % 2 == 0 ? second : first
            replace.append(
                milliseconds { replaceChanges = (try? data.client.replaceSnapshot(with: target))?.changed.count ?? -1 }
            )
        }
        guard replaceChanges == expectedChanges else {
            throw BenchmarkFailure("a replacement reported \(replaceChanges) changed flags, not \(expectedChanges)")
        }
        let decoded = EngineBenchmark.median(decode)
        let fingerprinted = EngineBenchmark.median(fingerprint)
        let compared = EngineBenchmark.median(compare)
        let replaced = EngineBenchmark.median(replace)
        print(
            "\(flagCount) flags, \(first.count) bytes, \(expectedChanges) changed; medians of \(rounds) rounds"
        )
        print("decode (Snapshot(document:))           \(EngineBenchmark.format(decoded)) ms   1.00x")
        print(
            "fingerprints (FlagFingerprints)        \(EngineBenchmark.format(fingerprinted)) ms   \(ratio(fingerprinted, decoded))"
        )
        print(
            "comparison (changes(to:))              \(EngineBenchmark.format(compared)) ms   \(ratio(compared, decoded))"
        )
        print(
            "diff = fingerprints + comparison       \(EngineBenchmark.format(fingerprinted + compared)) ms   \(ratio(fingerprinted + compared, decoded))"
        )
        print(
            "whole replacement (decode, diff, swap) \(EngineBenchmark.format(replaced)) ms   \(ratio(replaced, decoded))"
        )
    }

    private static func ratio(_ value: Double, _ reference: Double) -> String {
        String(format: "%.2fx", value / reference)
    }

    private static func milliseconds(_ body: () -> Void) -> Double {
        let start = ContinuousClock.now
        body()
        let elapsed = (ContinuousClock.now - start).components
        return Double(elapsed.seconds) * 1e3 + Double(elapsed.attoseconds) * 1e-15
    }

    /// A client fed in process, as `FliptTesting` makes them, so that a replacement does no I/O.
    struct TestDataClient {
        let client: FliptClient

        init(document: [UInt8]) {
            var options = ClientOptions(
                snapshot: String(decoding: document, as: UTF8.self),
                cache: CacheOptions(location: .disabled)
            )
            options.isFedInProcess = true
            client = try! FliptClient(options: options)
        }
    }
}
