/// The example snapshot bundled with `flipt-offline`, in Flipt's wire format (namespace `default`).
///
/// It is small on purpose and shows each kind of flag: a variant flag with a segment rule and a 50/50 split,
/// a boolean flag with a segment rollout and a percentage rollout, and a disabled flag.
enum ExampleDocument {
    /// The namespace the example belongs to.
    static let namespace = "default"

    /// The document as JSON text.
    static let json = """
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
            }
          ]
        }
        """
}
