"""The flow language: its model, loader and checks, the pure engine, the graph."""
