"""The daemon: the HTTP API, the service loop that owns all state changes, and its start-up."""
