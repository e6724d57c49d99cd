"""Generated operator contract (purse.platform.v1); regenerate with `make protos`."""
