"""Channel adapters: each turns one platform into RawInbound events and sends Messages."""
