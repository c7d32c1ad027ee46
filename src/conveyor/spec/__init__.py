"""Pipeline and config models, YAML loading, validation, the SDK and the JSON Schema."""
