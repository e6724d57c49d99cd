"""The control panel contract, generated."""
