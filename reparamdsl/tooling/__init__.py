"""Language tooling for .rp programs: formatter, language server, script emitter and step explainer."""
