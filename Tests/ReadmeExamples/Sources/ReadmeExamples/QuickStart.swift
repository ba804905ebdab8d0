import Flipt
import Logging
import ServiceLifecycle
import UnixSignals  // `.sigterm`'s module: MemberImportVisibility asks for it (ServiceLifecycle does not re-export it)

/// The README's quick start: a client for one namespace, a variant and a boolean evaluation, the status.
public func quickStart(token: String) throws -> String {
    let client = try FliptClient(
        namespace: "default",
        options: ClientOptions(
            url: "https://flipt.example.com",
            authentication: .clientToken(token),  // or .jwt(token); never stored on disk
            errorStrategy: .fallback  // keep serving the last good snapshot on errors
        )
    )
    defer { client.close() }
    let variant = try client.evaluateVariant(flagKey: "new-checkout", entityID: "user-42", context: ["plan": "pro"])
    let enabled = try client.evaluateBoolean(flagKey: "dark-mode", entityID: "user-42").isEnabled
    return "\(variant.variantKey) \(enabled) \(client.status.source)"
}

/// The README's `ServiceGroup` set-up: the client first, so that it stops after the services that use it.
public func serviceGroup(options: ClientOptions, app: some Service, logger: Logger) async throws {
    let flags = try FliptClient(namespace: "production", options: options, startsSyncing: false)
    try await ServiceGroup(services: [flags, app], gracefulShutdownSignals: [.sigterm], logger: logger).run()
}

/// The rest of the API the README names, with the engine's types as `import Flipt` alone names them.
public func restOfTheAPI(client: FliptClient, options: ClientOptions) async throws {
    var context: EvaluationContext = ["plan": "pro"]
    context["region"] = "eu"
    let variant: VariantResult = try client.evaluateVariant(flagKey: "new-checkout", entityID: "u1", context: context)
    let reason: EvaluationReason = variant.reason
    let boolean: BooleanResult = try client.evaluateBoolean(flagKey: "dark-mode", entityID: "u1", context: context)
    _ = (variant.variantAttachment, variant.segmentKeys, variant.evaluatedAt.rfc3339, reason, boolean.isEnabled)
    let batch: BatchResult = try client.evaluateBatch(requests: [
        EvaluationRequest(flagKey: "new-checkout", entityID: "u1", context: context)
    ])
    for response in batch.responses {
        switch response {
        case .variant(let result): _ = result.variantKey
        case .boolean(let result): _ = result.isEnabled
        case .error(let failure): _ = failure.reason == ErrorEvaluationReason.notFound
        }
    }
    for flag: Flag in try client.listFlags() where flag.type == FlagType.boolean {
        _ = (flag.key, flag.isEnabled, flag.defaultVariant?.key)
    }
    _ = client.booleanValue(flagKey: "dark-mode", entityID: "u1", default: false)
    _ = client.variantKey(flagKey: "new-checkout", entityID: "u1", default: "classic")
    let details = client.booleanValueDetails(flagKey: "dark-mode", entityID: "u1", default: false)
    _ = (details.reason, details.errorCode == FliptError.Code.flagNotFound, details.provenance.age)

    let status: ClientStatus = client.status
    _ = (status.source == DataSource.cache, status.etag, status.age, status.lastError?.code)
    for await event in client.events() {
        _ = event
        break
    }
    for await change in client.changes(of: "dark-mode") {
        _ = (change.kind, change.status.source)
        break
    }
    client.setOffline(true)
    client.setOffline(false)
    _ = await client.refresh()
    try await client.waitUntilReady(timeout: .seconds(5))
    try client.updateAuthentication(.jwt("token"))
    _ = try client.getSnapshot()

    // Several clients on one connection pool; its owner shuts it down after them.
    var shared = options
    shared.transport = try options.makeTransport()
    shared.fetchMode = FetchMode.streaming
    shared.tls = TLSOptions(additionalTrustRoots: [.pemFile("ca.pem")])
    shared.cache = CacheOptions(maximumAge: .seconds(3600), staleBehavior: .fail)
    shared.hooks = [try JSONLinesEvaluationExporter(path: "evaluations.jsonl")]
    let other: FliptEvaluationClient = try FliptClient(namespace: "mobile", options: shared)
    await other.shutdown()
    await shared.transport?.shutdown()
    client.close()
}
