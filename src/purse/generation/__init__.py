"""`purse generate`: a business of many members with their history, made up and written
by COPY, to try the customer list (and anything else) at the size of a real business.

`histories` makes the members and their sales up (pure, from a seeded random source),
`copying` writes them into PostgreSQL by COPY, and `founding` sets the business up
through the public API first, as `purse demo` does.
"""

from typing import Final

members_default: Final = 1_000_000
seed_default: Final = 13
