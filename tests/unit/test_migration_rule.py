"""Expand → migrate → contract (deploy/migrations.md): a migration is additive while the
previous release serves; what it removes, renames, narrows or rewrites is a contraction,
marked with the release it contracts, in a release after the one that stopped using it."""

from __future__ import annotations

from pathlib import Path

import pytest
from schema_sql import Finding, destructive, findings_by_migration, statements

from purse.store.postgres import database

rule_document = Path(__file__).resolve().parents[2] / "deploy" / "migrations.md"
# The newest migration written before the rule: no release served beside any of them.
last_migration_before_the_rule = 21
# What those migrations did that the rule would have made contractions (the document says
# what each would have been).
destructive_before_the_rule = {
    "0007_personal_data_per_business": ["DROP COLUMN"] * 3,
    "0009_back_office": ["SET NOT NULL"],
    "0011_catalogue": ["DROP CONSTRAINT"],
    "0013_receipt_bytes": ["RENAME"],
    "0014_hot_path_without_foreign_keys": ["DROP CONSTRAINT"] * 4,
    "0018_customer_list": ["ADD COLUMN GENERATED STORED (rewrites the table)"],
}


def found(sql: str) -> list[tuple[str, str | None]]:
    return [(finding.what, finding.contracts) for finding in destructive(statements("x", sql))]


def test_every_destructive_statement_since_the_rule_is_a_contraction_naming_its_release() -> None:
    unmarked = [
        finding
        for version, findings in findings_by_migration().items()
        if database.migration_number(version) > last_migration_before_the_rule
        for finding in findings
        if finding.contracts is None
    ]
    assert unmarked == []


def test_the_migrations_before_the_rule_are_destructive_where_the_document_says() -> None:
    before = {
        version: [finding.what for finding in findings]
        for version, findings in findings_by_migration().items()
        if database.migration_number(version) <= last_migration_before_the_rule
    }
    assert before == destructive_before_the_rule
    document = rule_document.read_text()
    assert [version for version in before if version[:4] not in document] == []


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE t ADD COLUMN a bigint",
        "ALTER TABLE t ADD COLUMN a bigint NOT NULL DEFAULT 0",
        "ALTER TABLE t ALTER COLUMN a DROP NOT NULL",
        "CREATE TABLE t (business_id bigint NOT NULL, PRIMARY KEY (business_id))",
        "CREATE INDEX t_by_a ON t (business_id, a); DROP INDEX t_by_b",
        "ALTER TABLE t DROP CONSTRAINT t_kind_check;"
        " ALTER TABLE t ADD CONSTRAINT t_kind_check CHECK (kind IN ('a', 'b', 'c'))",
        "UPDATE t SET a = 0 WHERE a IS NULL",
    ],
)
def test_additive_statements_are_expansions(sql: str) -> None:
    assert found(sql) == []


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("ALTER TABLE t DROP COLUMN a", "DROP COLUMN"),
        ("DROP TABLE t", "DROP TABLE"),
        ("ALTER TABLE t RENAME COLUMN a TO b", "RENAME"),
        ("ALTER TABLE t RENAME TO u", "RENAME"),
        ("ALTER TABLE t ALTER COLUMN a TYPE numeric", "ALTER COLUMN TYPE"),
        ("ALTER TABLE t ALTER COLUMN a SET NOT NULL", "SET NOT NULL"),
        ("ALTER TABLE t ADD COLUMN a bigint NOT NULL", "ADD COLUMN NOT NULL without a default"),
        (
            "ALTER TABLE t ADD COLUMN a bigint GENERATED ALWAYS AS (b * 2) STORED",
            "ADD COLUMN GENERATED STORED (rewrites the table)",
        ),
        ("ALTER TABLE t DROP CONSTRAINT t_a_key", "DROP CONSTRAINT"),
        ("DELETE FROM t WHERE a = 0", "DELETE"),
        ("TRUNCATE t", "TRUNCATE"),
    ],
)
def test_a_destructive_statement_is_refused_unless_marked(sql: str, what: str) -> None:
    assert found(sql) == [(what, None)]
    marked = f"-- Only 0.4 read it: a contraction of release 0.4.\n{sql}"
    assert found(marked) == [(what, "0.4")]


def test_the_marker_belongs_to_the_statement_under_it_only() -> None:
    sql = (
        "-- A contraction of release 0.4\nALTER TABLE t DROP COLUMN a;\n"
        "ALTER TABLE t DROP COLUMN b;"
    )
    assert destructive(statements("x", sql)) == [
        Finding("x", "DROP COLUMN", "0.4"),
        Finding("x", "DROP COLUMN", None),
    ]
