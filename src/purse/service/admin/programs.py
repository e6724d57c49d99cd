"""Programs: rules validated on write, compiled once per version, cached in-process.

A compiled program is reused as long as the version PostgreSQL reports is the one it was
compiled from. Callers pass the version they read in the same round trip as the rest of
a check's inputs, so a change made by any process takes effect on the very next check,
with no extra query. Callers without such a read (identification, which shows the
points no-PIN limit) take the version PostgreSQL last announced (`AnnouncedVersions`),
and ask only when none is trusted.

Rules are replaced whole, under the program's row lock, naming the `rules_version` the
caller read (0: whatever is there) and with their audit entry in the same transaction; an
archived program's rules no longer change.
"""

from __future__ import annotations

from purse.domain.administrators import Actor
from purse.domain.errors import FieldViolation, InvalidArgument, NotFound, echoed
from purse.domain.program import CompiledProgram, Program, compile_program, validate_program
from purse.domain.setup import Fields
from purse.domain.terminals import TerminalContext
from purse.service.admin.records import current, found
from purse.service.cache import ExpiringCache
from purse.service.ports import ProgramDocuments, Table, Writing
from purse.service.program_versions import AnnouncedVersions
from purse.store.postgres.programs import program_document, program_from_document

# A compiled program is dropped after an hour unused; a version change replaces it sooner.
compiled_program_lifetime_seconds = 3_600.0
compiled_programs_max = 10_000
PROGRAMS = Table("loyalty_programs", "program_id")


class Programs:
    """Reads, replaces and compiles program rules, business by business."""

    def __init__(
        self,
        store: ProgramDocuments,
        entries_max: int = compiled_programs_max,
        versions: AnnouncedVersions | None = None,
    ) -> None:
        self._store = store
        self._versions = versions or AnnouncedVersions(0.0, 1)  # never listening: asks
        self._compiled: ExpiringCache[tuple[int, CompiledProgram]] = ExpiringCache(
            compiled_program_lifetime_seconds, entries_max
        )

    async def rules(self, business_id: int, program_id: int, currency: str) -> tuple[Program, int]:
        stored = await self._store.rules(business_id, program_id)
        if stored is None:
            raise NotFound("no such program in this business", reason="PROGRAM_NOT_FOUND")
        version, document = stored
        return program_from_document(document, currency), version

    async def replace(
        self, actor: Actor, program_id: int, program: Program, expected_rules_version: int = 0
    ) -> int:
        """Validate, then store; returns the new version. Invalid rules, or rules changed
        since `expected_rules_version` (unless 0), change nothing."""
        fields = Fields()
        fields.positive("expected_rules_version", expected_rules_version, required=False)
        fields.raise_if_any()
        validate_program(program)
        async with self._store.writing(actor) as writing:
            before = found(
                await writing.locked(PROGRAMS, program_id), "program", "PROGRAM_NOT_FOUND"
            )
            # The rules have a version of their own: the program's settings may change
            # meanwhile without refusing this.
            current(
                before,
                expected_rules_version or before["rules_version"],
                "program",
                "PROGRAM_NOT_FOUND",
                version_column="rules_version",
            )
            await self._catalogued(writing, program)
            after = await self._store.replace_rules(writing, program_id, program_document(program))
            await writing.record("set_rules", PROGRAMS, program_id, before, after)
        version: int = after["rules_version"]
        self._versions.learned(actor.business_id, program_id, version)
        return version

    async def _catalogued(self, writing: Writing, program: Program) -> None:
        """Rules name goods categories of the business's catalogue: a code it does not
        have (a typo) would match nothing, silently; it is refused instead."""
        named = {code for rule in program.rules for code in rule.selector.goods_category_codes}
        if not named:
            return
        unknown = named - await self._store.live_goods_categories(writing, named)
        violations = tuple(
            FieldViolation(
                f"rules.rules[{index}].selector.goods_category_codes[{position}]",
                f"{echoed(code)} is not a live goods category of this business",
            )
            for index, rule in enumerate(program.rules)
            for position, code in enumerate(rule.selector.goods_category_codes)
            if code in unknown
        )
        if violations:
            raise InvalidArgument(
                f"{violations[0].field}: {violations[0].description}",
                reason="GOODS_CATEGORY_UNKNOWN",
                violations=violations,
            )

    async def compiled(
        self, business_id: int, program_id: int, currency: str, version: int | None = None
    ) -> CompiledProgram:
        """The compiled program at `version` (when not given: the version announced, or
        read when none is trusted)."""
        key = (business_id, program_id)
        if version is None:
            version = self._versions.known(business_id, program_id)
        if version is None:
            version = await self._store.version(business_id, program_id)
        if version is not None:
            self._versions.learned(business_id, program_id, version)
        cached = self._compiled.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        program, stored_version = await self.rules(business_id, program_id, currency)
        compiled = compile_program(program)
        self._compiled.put(key, (stored_version, compiled))
        return compiled

    async def points_limit(self, terminal: TerminalContext) -> int | None:
        """The terminal's program's no-PIN limit for points, hundredths (None: never),
        at the version stored now (announced, or one small read), from the compiled
        program's cache."""
        compiled = await self.compiled(terminal.business_id, terminal.program_id, terminal.currency)
        return compiled.program.points_redemption_limit_without_pin
