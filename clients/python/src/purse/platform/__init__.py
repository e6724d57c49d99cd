"""The operator contract, generated."""
