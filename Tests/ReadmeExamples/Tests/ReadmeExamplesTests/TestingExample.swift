import Flipt
import FliptTesting
import Testing

// The README's `FliptTesting` example, as written there.
@Test func proUsersGetExpressCheckout() throws {
    let flags = TestData()
    try flags.update(.all("pro-users", .string("plan", .equals("pro")), .number("age", .greaterThanOrEqual(18))))
    try flags.update(
        .variant("checkout", variants: ["classic", "express"], default: "classic")
            .rule(matching: ["pro-users"], serve: "express")
    )
    let client = try flags.makeClient()
    #expect(
        try client.evaluateVariant(
            flagKey: "checkout",
            entityID: "u1",
            context: ["plan": "pro", "age": "30"]
        ).variantKey == "express"
    )
    try flags.update(.boolean("dark-mode", value: true))  // reaches `client` at once, with its change events
    #expect(try client.evaluateBoolean(flagKey: "dark-mode", entityID: "u1").isEnabled)
}
