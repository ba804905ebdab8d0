import ArgumentParser

/// The `flipt-offline` command: evaluate, sync, inspect and serve a Flipt snapshot cache.
@main
struct FliptOffline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flipt-offline",
        abstract: "Evaluate Flipt feature flags offline, and manage the snapshot cache that makes it possible.",
        subcommands: [
            EvalCommand.self, SyncCommand.self, RunCommand.self, CacheCommand.self, ServeCommand.self, DemoCommand.self,
        ]
    )
}
