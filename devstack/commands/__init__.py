"""One module per command: parse nothing, take typed arguments, return an exit code."""
