import FliptSync
import FliptTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Process CPU time (user + system) so far.
func processCPUTime() -> Duration {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func duration(_ time: timeval) -> Duration { .seconds(Int64(time.tv_sec)) + .microseconds(Int64(time.tv_usec)) }
    return duration(usage.ru_utime) + duration(usage.ru_stime)
}

@Suite("Measurements: traffic and CPU per poll", .serialized, .timeLimit(.minutes(1)))
struct MeasurementTests {
    @Test("bytes and requests per hour at the default interval; CPU per 304 and per 1,000-flag 200")
    func trafficAndCPU() async throws {
        try await withTestServer { server in
            let document = FixtureDocument.bytes(flagCount: 1_000)
            server.setDocument(document)
            let fetcher = try makeFetcher(server)
            let first = try #require(try await fetcher.fetch(ifNoneMatch: nil).fetched)
            let etag = try #require(first.etag)
            let rounds = 40
            let fullRounds = 10

            server.resetLog()
            let cpu304Start = processCPUTime()
            for _ in 0..<rounds { #expect(try await fetcher.fetch(ifNoneMatch: etag).notModifiedETag == etag) }
            let cpu304 = (processCPUTime() - cpu304Start) / rounds
            let traffic304 = server.traffic

            server.resetLog()
            let cpu200Start = processCPUTime()
            for _ in 0..<fullRounds { #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil) }
            let cpu200 = (processCPUTime() - cpu200Start) / fullRounds
            let traffic200 = server.traffic

            let pollsPerHour = 3_600 / 120
            let bytes304 = (traffic304.bytesReceived + traffic304.bytesSent) / rounds
            let bytes200 = (traffic200.bytesReceived + traffic200.bytesSent) / fullRounds
            print(
                """
                MEASURE document: 1,000 flags, \(document.count) bytes
                MEASURE 304 exchange: \(traffic304.bytesReceived / rounds) B request + \
                \(traffic304.bytesSent / rounds) B response = \(bytes304) B
                MEASURE 200 exchange: \(traffic200.bytesReceived / fullRounds) B request + \
                \(traffic200.bytesSent / fullRounds) B response = \(bytes200) B
                MEASURE per hour at 120 s, unchanged namespace: \(pollsPerHour) requests, \(bytes304 * pollsPerHour) B
                MEASURE per hour at 120 s, namespace changing every poll: \(pollsPerHour) requests, \
                \(bytes200 * pollsPerHour) B
                MEASURE CPU per 304 poll (client + in-process server): \(cpu304)
                MEASURE CPU per 1,000-flag 200 (client + in-process server, decode included): \(cpu200)
                """
            )
            #expect(traffic304.requests == rounds && traffic200.requests == fullRounds)
            #expect(bytes304 < 1_024)
            #expect(bytes200 > document.count)
            #expect(cpu304 < cpu200)
        }
    }
}
