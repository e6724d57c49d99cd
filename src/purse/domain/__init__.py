"""The pure core: amounts, identifiers, checks, the rules engine, pockets and holds.

Nothing in this package performs I/O, imports asyncio, protobuf or a database driver;
every function is synchronous and deterministic.
"""
