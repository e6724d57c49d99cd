"""Transports. Protobuf messages never travel past this package."""
