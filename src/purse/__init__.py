"""Purse: an open-source loyalty processing core."""

__version__ = "0.1.0"
