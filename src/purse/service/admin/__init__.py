"""Use cases of the admin contract: program rules."""
