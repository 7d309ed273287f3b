"""Pure builders: domain models in, plain ``dict`` manifests out (no I/O, no clock)."""
