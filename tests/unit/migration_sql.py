"""The migrations' SQL read with PostgreSQL's own parser (pglast), for the tests of the
expand → migrate → contract rule (deploy/migrations.md) and of the partitioning plan
(deploy/scaling.md).

A *destructive* statement is one the previous release, still serving while a migration
applies, could trip over or wait behind: it drops or renames what that release reads or
writes (a table, view, function, type, column, or a constraint it names, unless the same
migration adds one of that name back, as a widened CHECK is), changes a column's type,
makes a column NOT NULL (an added one without a default, or an existing one), rewrites a
whole table under its lock (an added stored generated column), or removes rows
(DELETE, TRUNCATE). A destructive statement is allowed only as a *contraction*: the
comments just above it say `contraction of release NAME`, the release whose code needed
what it removes (and which no longer serves when the migration applies).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pglast import ast, enums, parse_sql

from purse.store.postgres import database

contraction_marker = re.compile(r"--[^\n]*\bcontraction of release\s+([\w.-]*\w)", re.IGNORECASE)
_dropped_objects_allowed = frozenset({enums.ObjectType.OBJECT_INDEX})
_destructive_table_changes = {
    enums.AlterTableType.AT_DropColumn: "DROP COLUMN",
    enums.AlterTableType.AT_AlterColumnType: "ALTER COLUMN TYPE",
    enums.AlterTableType.AT_SetNotNull: "SET NOT NULL",
}


@dataclass(frozen=True)
class Statement:
    """One statement of a migration: its text with the comments just above it, parsed."""

    version: str
    text: str
    node: ast.Node


@dataclass(frozen=True)
class Finding:
    """A destructive statement: what it does, and the release it contracts if marked."""

    version: str
    what: str
    contracts: str | None


def statements(version: str, sql: str) -> list[Statement]:
    """The statements of `sql`, each with the text since the end of the one before it."""
    encoded = sql.encode()  # the parser's locations count bytes
    parsed, start = [], 0
    for raw in parse_sql(sql):
        # A statement's length is 0 when it runs to the end of the text.
        end = (raw.stmt_location or 0) + raw.stmt_len if raw.stmt_len else len(encoded)
        assert raw.stmt is not None
        parsed.append(Statement(version, encoded[start:end].decode(), raw.stmt))
        start = end
    return parsed


def migration_statements() -> Iterator[Statement]:
    """Every statement of every migration, in order."""
    for version, sql in database.migration_files():
        yield from statements(version, sql)


def destructive(migration: list[Statement]) -> list[Finding]:
    """The destructive statements of one migration's statements."""
    added: set[str] = {
        command.def_.conname or ""
        for statement in migration
        if isinstance(statement.node, ast.AlterTableStmt)
        for command in statement.node.cmds or ()
        if isinstance(command, ast.AlterTableCmd) and isinstance(command.def_, ast.Constraint)
    }
    findings = []
    for statement in migration:
        for what in _destructive_changes(statement.node, added):
            marked = contraction_marker.search(statement.text)
            findings.append(Finding(statement.version, what, marked and marked.group(1)))
    return findings


def _destructive_changes(node: ast.Node, constraints_added: set[str]) -> Iterator[str]:
    if isinstance(node, ast.DropStmt) and node.removeType not in _dropped_objects_allowed:
        assert node.removeType is not None
        yield f"DROP {node.removeType.name.removeprefix('OBJECT_')}"
    elif isinstance(node, ast.RenameStmt):
        yield "RENAME"
    elif isinstance(node, ast.TruncateStmt | ast.DeleteStmt):
        yield type(node).__name__.removesuffix("Stmt").upper()
    elif isinstance(node, ast.AlterTableStmt):
        for command in node.cmds or ():
            assert isinstance(command, ast.AlterTableCmd)
            if command.subtype in _destructive_table_changes:
                yield _destructive_table_changes[command.subtype]
            elif command.subtype == enums.AlterTableType.AT_DropConstraint:
                if command.name not in constraints_added:
                    yield "DROP CONSTRAINT"
            elif command.subtype == enums.AlterTableType.AT_AddColumn:
                yield from _added_column_changes(command.def_)


def _added_column_changes(column: object) -> Iterator[str]:
    assert isinstance(column, ast.ColumnDef)
    kinds = {
        constraint.contype
        for constraint in column.constraints or ()
        if isinstance(constraint, ast.Constraint)
    }
    if enums.ConstrType.CONSTR_GENERATED in kinds:
        yield "ADD COLUMN GENERATED STORED (rewrites the table)"
    if enums.ConstrType.CONSTR_NOTNULL in kinds and enums.ConstrType.CONSTR_DEFAULT not in kinds:
        yield "ADD COLUMN NOT NULL without a default"


def findings_by_migration() -> dict[str, list[Finding]]:
    """Every migration's destructive statements, by version (none: left out)."""
    found: dict[str, list[Finding]] = {}
    for version, sql in database.migration_files():
        mine = destructive(statements(version, sql))
        if mine:
            found[version] = mine
    return found
