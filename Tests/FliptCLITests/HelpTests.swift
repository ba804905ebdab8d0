import Foundation
import Testing

@Suite("flipt-offline --help")
struct HelpTests {
    /// Every command: its usage line, examples, and where a command has its own exit statuses, the table.
    static let commands: [(path: [String], needsExamples: Bool, exitStatuses: [String])] = [
        ([], false, []),
        (["eval"], true, ["0", "1", "2", "3", "4", "30", "64"]),
        (["sync"], true, ["0", "10", "20", "21", "22", "23", "30", "64"]),
        (["run"], true, ["0", "30", "64"]),
        (["cache"], false, ["0", "1", "2", "3", "4", "5", "30", "64"]),
        (["cache", "ls"], true, []),
        (["cache", "show"], true, []),
        (["cache", "history"], true, []),
        (["cache", "diff"], true, []),
        (["cache", "rollback"], true, []),
        (["cache", "verify"], true, []),
        (["cache", "prune"], true, []),
        (["cache", "export"], true, []),
        (["cache", "import"], true, []),
    ]

    @Test("help text of every command", arguments: 0..<commands.count)
    func helpText(index: Int) async throws {
        let command = Self.commands[index]
        let result = try await CommandLineTool.run(command.path + ["--help"])
        #expect(result.status == 0, "\(result)")
        let usage = (["USAGE: flipt-offline"] + command.path).joined(separator: " ")
        #expect(result.stdout.contains(usage), "\(result.stdout)")
        #expect(result.stdout.contains("OVERVIEW: "))
        if command.needsExamples {
            #expect(result.stdout.contains("Examples:\n  flipt-offline \(command.path.joined(separator: " "))"))
        }
        if !command.exitStatuses.isEmpty {
            #expect(result.stdout.contains("Exit status"))
            for status in command.exitStatuses {
                #expect(result.stdout.contains("\n  \(status) "), "exit status \(status) is not documented")
            }
        }
        // ArgumentParser wraps prose to 80 columns; an example or table row it had to wrap leaves a line without
        // the block's indentation.
        var block: String?
        for line in result.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("Examples:") || line.hasPrefix("Exit status") {
                block = String(line)
            } else if line.isEmpty {
                block = nil
            } else if let block {
                #expect(line.hasPrefix("  "), "a line of \(block) was wrapped: \(line)")
            }
        }
    }

    @Test("the root help lists every command")
    func rootListsCommands() async throws {
        let result = try await CommandLineTool.run(["--help"])
        for name in ["eval", "sync", "run", "cache"] {
            #expect(result.stdout.contains("\n  \(name) "), "\(name) is missing from the command list")
        }
        let cache = try await CommandLineTool.run(["cache", "--help"])
        for name in ["ls", "show", "history", "diff", "rollback", "verify", "prune", "export", "import"] {
            #expect(cache.stdout.contains("\n  \(name) "), "cache \(name) is missing from the command list")
        }
    }

    @Test("credentials cannot be given on the command line")
    func noTokenOption() async throws {
        let result = try await CommandLineTool.run(["sync", "--client-token", "secret-value"])
        #expect(result.status == 64, "\(result)")
        let help = try await CommandLineTool.run(["sync", "--help"])
        #expect(help.stdout.contains("--client-token-file"))
        #expect(help.stdout.contains("FLIPT_CLIENT_TOKEN"))
    }
}
