"""VM mode: the same stack inside a Vagrant VM, driven from the host."""
