"""Use cases: gather inputs, call the pure core, hand writes to the stores."""
