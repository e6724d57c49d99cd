"""The partitioning plan (deploy/scaling.md), checked where the SQL can show it: the
schema distributes by business_id (every distributed table's primary key starts with
it; the reference tables and the keys unique across businesses are the named ones), and
every statement the store writes chooses its business, but for the cross-business ones
named here with the reason they are."""

from __future__ import annotations

from pathlib import Path

from schema_sql import primary_keys, store_queries, unique_keys

plan_path = Path(__file__).resolve().parents[2] / "deploy" / "scaling.md"
# Tables not distributed by business: each row is the instance's, not a business's.
reference_tables = {
    "customers": "a person's phone, shared by every business they are a member of",
    "operator_api_keys": "the operator's keys, which found businesses",
    "instance_secrets": "the signing secret every host shares",
}
# Keys unique across businesses on distributed tables: a terminal or an administrator
# signs in by login or key before its business is known.
keys_unique_across_businesses = {
    ("terminals", ("login",)),
    ("terminal_api_keys", ("key_hash",)),
    ("administrators", ("login",)),
    ("admin_api_keys", ("key_hash",)),
}
# Statements that choose no business, by module and a piece of their text, and why.
cross_business_statements = {
    (
        "administrators.py",
        "WHERE k.key_hash = $1",
    ): "an administrator's key, before its business is known",
    ("administrators.py", "WHERE a.login = $1"): "an administrator's sign-in by login",
    ("terminals.py", "WHERE t.login = $1"): "a terminal's sign-in by login",
    ("administrators.py", "operator_api_keys"): "the operator's keys (a reference table)",
    ("customers.py", "FROM customers WHERE customer_id = $1"): "the reference table of customers",
    ("back_office.py", "INSERT INTO businesses"): "founding a business: its id is made here",
    ("database.py", "schema_migrations"): "the migrations runner",
    ("database.py", "instance_secrets"): "the instance's signing secret (a reference table)",
    ("database.py", "pg_advisory_xact_lock"): "the migrations runner's lock",
    (
        "bulk_actions.py",
        "pg_try_advisory_lock",
    ): "a bulk operation's runner lock (by business and id)",
    (
        "bulk_actions.py",
        "pg_advisory_unlock",
    ): "a bulk operation's runner lock (by business and id)",
    ("device_tokens.py", "pg_advisory_xact_lock"): "a lock on one device token's text",
    ("customer_export.py", "set_config"): "the export's statement timeout",
    (
        "bulk_actions.py",
        "WHERE state = 'running'",
    ): "the bulk runner's look for running operations of every business",
    ("bulk_actions.py", "o.state = 'draft'"): "the sweep of expired drafts of every business",
    ("outbox.py", "WITH due AS"): "the outbox dispatcher's claim of due messages of every business",
    ("outbox.py", "DELETE FROM outbox_messages"): "the outbox retention sweep",
    ("transactions.py", "confirmation_deadline < now()"): "the sweep of holds past their deadline",
    ("transactions.py", "l.remaining > 0 AND l.expires"): "the sweep of expired points lots",
    ("outbox.py", "AS overdue_seconds"): "the metrics' count of unsent messages of every business",
    (
        "transactions.py",
        "SELECT count(*) FROM transactions WHERE status = 'pending'",
    ): "the metrics' count of pending holds of every business",
    (
        "receipts.py",
        "receipt_document IS NOT NULL",
    ): "the conversion of old receipts, every business",
    (
        "receipts.py",
        "UPDATE transactions t SET receipt",
    ): "the conversion of old receipts, every business",
    (
        "audit.py",
        "NOT EXISTS",
    ): "`purse audit` over every business (or one, filtered by the caller)",
    (
        "customers.py",
        "SELECT m.customer_id, c.phone",
    ): "a statement's head: its WHERE names the business where it is used",
    (
        "transactions.py",
        "SELECT t.*,",
    ): "a statement's head: its WHERE names the business where it is used",
    (
        "customer_list.py",
        "composed_part",
    ): "a page built from parts: the filter's part starts with the business",
    ("customer_export.py", "composed_part"): "the list's statement, built from the same parts",
}


def test_every_distributed_tables_primary_key_starts_with_business_id() -> None:
    keys = primary_keys()
    not_by_business = {table for table, key in keys.items() if key[:1] != ["business_id"]}
    assert not_by_business == set(reference_tables)
    assert "memberships" in keys and "ledger_entries" in keys


def test_only_the_sign_in_keys_are_unique_across_businesses() -> None:
    across = {
        (table, tuple(columns))
        for table, columns in unique_keys()
        if table not in reference_tables and columns[:1] != ["business_id"]
    }
    assert across == keys_unique_across_businesses


def test_the_plan_names_every_reference_table_and_cross_business_key() -> None:
    plan = plan_path.read_text()
    named = [
        *reference_tables,
        *(f"{table}.{columns[0]}" for table, columns in keys_unique_across_businesses),
    ]
    assert [name for name in named if f"`{name}`" not in plan] == []


def test_every_statement_of_the_store_chooses_its_business_or_is_named_cross_business() -> None:
    queries = list(store_queries())
    assert len(queries) > 100  # the scan finds the store's statements
    unexplained = [
        (query.module, query.line, query.text[:80])
        for query in queries
        if not query.filters_by_business
        and not any(
            module == query.module and piece in query.text
            for module, piece in cross_business_statements
        )
    ]
    assert unexplained == []


def test_every_cross_business_statement_named_is_still_written() -> None:
    queries = list(store_queries())
    stale = [
        entry
        for entry in cross_business_statements
        if not any(
            query.module == entry[0] and entry[1] in query.text and not query.filters_by_business
            for query in queries
        )
    ]
    assert stale == []
