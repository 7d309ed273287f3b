"""Model lifecycle: load / predict / unload, bundle cache and activation."""
