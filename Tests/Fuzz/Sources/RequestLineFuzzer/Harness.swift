import FliptEngine
import Foundation
import FuzzSupport

/// The evaluator every input is answered with: the example document of `flipt-offline demo`, copied.
private let lines: JSONLinesEvaluator = {
    do {
        return JSONLinesEvaluator(snapshot: try Snapshot(document: Array(exampleDocument.utf8)), namespace: "default")
    } catch {
        invariantFailure("the example document does not decode: \(error)")
    }
}()

/// One fuzz input: one request line of `flipt-offline eval --requests`.
///
/// Checks that the answer is always one line holding one JSON object, with `status` success (and a `result`
/// object or flag list, a null `error_message`) or failure (a null `result`, an `error_message` string), and that the copying path
/// for non-contiguous input gives the same status.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    let answer = lines.answer(line: bytes)
    let status = check(answer)
    let copied = lines.answer(line: ScatteredBytes(bytes))
    require(check(copied) == status, "the copying path answered \(copied), the direct one \(answer)")
    return 0
}

/// Checks the envelope of `answer` and returns its status.
private func check(_ answer: String) -> String {
    require(!answer.utf8.contains(0x0A) && !answer.utf8.contains(0x0D), "the answer spans several lines: \(answer)")
    guard let object = JSONCheck.object(answer.utf8) else { invariantFailure("the answer is not JSON: \(answer)") }
    switch object["status"] as? String {
    case "success":
        require(
            object["result"] is [String: Any] || object["result"] is [Any],
            "a success without a result (an object, or the list of flags): \(answer)"
        )
        require(object["error_message"] is NSNull, "a success with an error message: \(answer)")
        return "success"
    case "failure":
        require(object["result"] is NSNull, "a failure with a result: \(answer)")
        require(object["error_message"] is String, "a failure without an error message: \(answer)")
        return "failure"
    default:
        invariantFailure("the answer has no valid status: \(answer)")
    }
}

/// A copy of `ExampleDocument.json` from the `flipt-offline` sources (an executable target cannot be imported),
/// with one more flag whose constraints parse numbers, times, lists and the entity ID from the request.
private let exampleDocument = """
    {
      "namespace": { "key": "default" },
      "flags": [
        {
          "key": "new-checkout", "name": "New checkout", "description": "Which checkout page to show",
          "enabled": true, "type": "VARIANT_FLAG_TYPE",
          "rules": [
            {
              "segmentOperator": "OR_SEGMENT_OPERATOR",
              "segments": [
                {
                  "key": "pro-users", "name": "Pro users", "matchType": "ALL_SEGMENT_MATCH_TYPE",
                  "constraints": [
                    { "type": "STRING_CONSTRAINT_COMPARISON_TYPE", "property": "plan",
                      "operator": "eq", "value": "pro" }
                  ]
                }
              ],
              "distributions": [
                { "variantKey": "one-page", "variantAttachment": "{\\"steps\\":1}", "rollout": 50 },
                { "variantKey": "two-page", "variantAttachment": "{\\"steps\\":2}", "rollout": 50 }
              ]
            }
          ],
          "rollouts": [],
          "defaultVariant": { "id": "classic", "key": "classic", "attachment": "{\\"steps\\":3}" }
        },
        {
          "key": "dark-mode", "name": "Dark mode", "description": "Offer the dark theme",
          "enabled": true, "type": "BOOLEAN_FLAG_TYPE",
          "rules": [],
          "rollouts": [
            {
              "type": "SEGMENT_ROLLOUT_TYPE",
              "segment": {
                "value": true, "segmentOperator": "OR_SEGMENT_OPERATOR",
                "segments": [
                  {
                    "key": "beta-testers", "name": "Beta testers", "matchType": "ANY_SEGMENT_MATCH_TYPE",
                    "constraints": [
                      { "type": "BOOLEAN_CONSTRAINT_COMPARISON_TYPE", "property": "beta",
                        "operator": "true", "value": "" }
                    ]
                  }
                ]
              }
            },
            { "type": "THRESHOLD_ROLLOUT_TYPE", "threshold": { "percentage": 30, "value": true } }
          ]
        },
        {
          "key": "holiday-banner", "name": "Holiday banner", "description": "",
          "enabled": false, "type": "BOOLEAN_FLAG_TYPE", "rules": [], "rollouts": []
        },
        {
          "key": "limits", "name": "Limits", "enabled": true, "type": "VARIANT_FLAG_TYPE",
          "rules": [
            {
              "segmentOperator": "AND_SEGMENT_OPERATOR",
              "segments": [
                {
                  "key": "numbers", "matchType": "ANY_SEGMENT_MATCH_TYPE",
                  "constraints": [
                    { "type": "NUMBER_CONSTRAINT_COMPARISON_TYPE", "property": "age", "operator": "gte",
                      "value": "10" },
                    { "type": "NUMBER_CONSTRAINT_COMPARISON_TYPE", "property": "age", "operator": "isoneof",
                      "value": "[1, 2.5, -3e2]" },
                    { "type": "DATETIME_CONSTRAINT_COMPARISON_TYPE", "property": "when", "operator": "lt",
                      "value": "2024-06-01T00:00:00Z" }
                  ]
                },
                {
                  "key": "names", "matchType": "ALL_SEGMENT_MATCH_TYPE",
                  "constraints": [
                    { "type": "STRING_CONSTRAINT_COMPARISON_TYPE", "property": "plan", "operator": "isoneof",
                      "value": "[\\"pro\\",\\"team\\"]" },
                    { "type": "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE", "property": "", "operator": "prefix",
                      "value": "user" },
                    { "type": "DATETIME_CONSTRAINT_COMPARISON_TYPE", "property": "when", "operator": "present",
                      "value": "" }
                  ]
                }
              ],
              "distributions": [
                { "variantKey": "low", "rollout": 33.3 }, { "variantKey": "high", "rollout": 66.7 }
              ]
            }
          ]
        }
      ]
    }
    """
