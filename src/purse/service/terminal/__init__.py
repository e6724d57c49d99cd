"""Use cases of the terminal contract: identification, check calculation, checkout,
holds (PIN confirmation), refunds and the transaction history."""
