"""`devstack doctor`: a registry of checks with stable IDs, run against a target stack."""
