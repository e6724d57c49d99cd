"""How Purse stores some of what it keeps (purse.store.v1), generated; regenerate with
`make protos`."""
