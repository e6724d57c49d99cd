"""PostgreSQL: the source of truth. Pools, migrations and set-based queries."""
