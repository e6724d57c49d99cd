"""The migrations' SQL and the store's statements read with PostgreSQL's own parser
(pglast), for the tests of the expand → migrate → contract rule (deploy/migrations.md)
and of the partitioning plan (deploy/scaling.md): destructive statements, primary and
unique keys, and whether a statement of src/purse/store/postgres chooses its business.

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

import ast as python_ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError

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


def walk(node: object) -> Iterator[ast.Node]:
    """`node` and every node under it."""
    if isinstance(node, tuple):
        for item in node:
            yield from walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from walk(getattr(node, attribute))


store_folder = Path(database.__file__).parent
# How a statement starts: the store writes SQL keywords in capitals (a docstring or a
# message saying "Update a row…" is not a statement).
_statement_start = re.compile(r"^\s*(WITH|SELECT|INSERT|UPDATE|DELETE)\b")
# Stands for an f-string's replacement field: an identifier parses in most places.
_replacement_field = "composed_part"


@dataclass(frozen=True)
class Query:
    """A statement written in a store module: the module, the line, its text (an
    f-string's replacement fields standing as `composed_part`), and whether it filters
    by business_id."""

    module: str
    line: int
    text: str
    filters_by_business: bool


def store_queries() -> Iterator[Query]:
    """Every string literal in src/purse/store/postgres/*.py that starts as a statement."""
    for path in sorted(store_folder.glob("*.py")):
        tree = python_ast.parse(path.read_text())
        inner = {
            id(value)
            for node in python_ast.walk(tree)
            if isinstance(node, python_ast.JoinedStr)
            for value in node.values
        }
        for node in python_ast.walk(tree):
            if not isinstance(node, python_ast.expr) or id(node) in inner:
                continue
            text = _literal_text(node)
            if text is not None and _statement_start.match(text):
                yield Query(path.name, node.lineno, text, _filters_by_business(text))


def _literal_text(node: python_ast.AST) -> str | None:
    if isinstance(node, python_ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, python_ast.JoinedStr):
        return "".join(
            str(value.value) if isinstance(value, python_ast.Constant) else _replacement_field
            for value in node.values
        )
    return None


def _filters_by_business(text: str) -> bool:
    """business_id compared, in a WHERE or a join's condition, with something other than
    another row's business_id (a join on it keeps a business's rows together but chooses
    no business), or among an INSERT's columns; for a piece of a statement the parser
    cannot read alone, business_id anywhere in it."""
    try:
        parsed = parse_sql(text)
    except ParseError:
        return re.search(r"\bbusiness_id\b", text) is not None
    for node in walk(tuple(raw.stmt for raw in parsed)):
        condition = getattr(node, "whereClause", None) or getattr(node, "quals", None)
        if condition is not None and any(_binds_business(found) for found in walk(condition)):
            return True
        if isinstance(node, ast.InsertStmt) and any(
            isinstance(target, ast.ResTarget) and target.name == "business_id"
            for target in node.cols or ()
        ):
            return True
    return False


def _binds_business(node: ast.Node) -> bool:
    if not isinstance(node, ast.A_Expr):
        return False
    sides = [_is_business_column(node.lexpr), _is_business_column(node.rexpr)]
    return sides.count(True) == 1


def _is_business_column(node: object) -> bool:
    if not isinstance(node, ast.ColumnRef) or not node.fields:
        return False
    last = node.fields[-1]
    return isinstance(last, ast.String) and last.sval == "business_id"


def primary_keys() -> dict[str, list[str]]:
    """Every table the migrations create, with its primary key's columns."""
    keys: dict[str, list[str]] = {}
    for statement in migration_statements():
        node = statement.node
        if isinstance(node, ast.CreateStmt):
            assert node.relation is not None and node.relation.relname is not None
            keys[node.relation.relname] = _primary_key(node)
        elif isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_TABLE:
            raise AssertionError(f"{statement.version} drops a table: follow it here")
    return keys


def _primary_key(table: ast.CreateStmt) -> list[str]:
    for element in table.tableElts or ():
        if isinstance(element, ast.Constraint) and _is_primary(element):
            return _names(element.keys)
        if isinstance(element, ast.ColumnDef) and any(
            isinstance(constraint, ast.Constraint) and _is_primary(constraint)
            for constraint in element.constraints or ()
        ):
            return [element.colname or ""]
    return []


def _names(keys: tuple[object, ...] | None) -> list[str]:
    return [key.sval or "" for key in keys or () if isinstance(key, ast.String)]


def _is_primary(constraint: ast.Constraint) -> bool:
    return constraint.contype == enums.ConstrType.CONSTR_PRIMARY


def unique_keys() -> Iterator[tuple[str, list[str]]]:
    """(table, columns) of every unique key the migrations declare: UNIQUE columns and
    constraints, and unique indexes (on columns, not on expressions)."""
    for statement in migration_statements():
        node = statement.node
        if isinstance(node, ast.CreateStmt):
            assert node.relation is not None and node.relation.relname is not None
            for element in node.tableElts or ():
                if isinstance(element, ast.Constraint) and _is_unique(element):
                    yield node.relation.relname, _names(element.keys)
                elif isinstance(element, ast.ColumnDef) and any(
                    isinstance(constraint, ast.Constraint) and _is_unique(constraint)
                    for constraint in element.constraints or ()
                ):
                    yield node.relation.relname, [element.colname or ""]
        elif isinstance(node, ast.IndexStmt) and node.unique:
            assert node.relation is not None and node.relation.relname is not None
            columns = [
                element.name or ""
                for element in node.indexParams or ()
                if isinstance(element, ast.IndexElem)
            ]
            yield node.relation.relname, columns


def _is_unique(constraint: ast.Constraint) -> bool:
    return constraint.contype == enums.ConstrType.CONSTR_UNIQUE
