"""One module per command: parse arguments, call the client, print. Stdlib only."""
