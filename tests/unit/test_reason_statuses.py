"""The catalogue cannot lie about status codes: every refusal the source builds is
answered with the status the catalogue gives its reason.

The scan reads the source's syntax for the refusals whose reason it can see: a refusal
class built with a literal reason (`NotFound(..., reason="X")`, `invalid(path, text,
"X")`), a call of a function that hands its own parameter on as a refusal's reason
(`found(row, what, "X")`, `limit.take(key, text, "X")`: found to a fixed point), a
module constant given as such a reason, the default reason of each class, and a reason
given beside a status code (`transport_error(grpc.StatusCode.X, text, "Y")`, an ErrorInfo
inside `status_pb2.Status(code=code_pb2.X, …)`). For each, the status the error
table gives the class must be the catalogue's status of the reason.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from purse.api.grpc.common.errors import status_code_for
from purse.domain import errors
from purse.domain.customer_operations import settlement_refusal
from purse.domain.reasons import ERROR_REASONS
from purse.domain.transactions import Refusal

# The server's source (purse is a namespace package: errors.py is in purse/domain).
_source = Path(errors.__file__).parents[1]
_refusal_classes: dict[str, type[errors.DomainError]] = {
    name: value
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.DomainError)
}
# Callable name -> (the refusal class it builds, where its reason is among the arguments).
Forwarders = dict[str, tuple[type[errors.DomainError], int]]
_direct: Forwarders = {
    **{name: (refusal, 1) for name, refusal in _refusal_classes.items()},
    "invalid": (errors.InvalidArgument, 2),
}
# Catalogued reasons built where the scan cannot see the class, and where that is.
_out_of_sight = {
    "GOODS_CATEGORY_NOT_FOUND": "the goods categories' Resource: NotFound through `found`",
    "GOODS_NOT_FOUND": "the goods' Resource: NotFound through `found`",
    "CERTIFICATE_NOT_FOUND": "the certificates' Resource: NotFound through `found`",
    "LOGIN_TAKEN": "unique constraint tables: AlreadyExists through `unique_fields`",
    "NAME_TAKEN": "unique constraint tables: AlreadyExists through `unique_fields`",
    "STEWARD_CODE_USED": "identification's table of steward code states: FailedPrecondition",
    "STEWARD_CODE_EXPIRED": "identification's table of steward code states: FailedPrecondition",
    "REDEMPTION_ABOVE_CAP": "the engine's (reason, description) pairs: FailedPrecondition",
    "POINTS_REDEMPTION_NOT_ALLOWED": "the engine's (reason, description) pairs",
    "CHECK_SUM_BELOW_MINIMUM": "the engine's (reason, description) pairs",
    "EXPIRY_OUT_OF_RANGE": "an operation's (field, description, reason) violations",
    "COUPON_CODE_INVALID": "an operation's (field, description, reason) violations",
}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(_source.rglob("*.py")):
        if path.parent.name != "v1":  # generated code
            yield str(path.relative_to(_source)), ast.parse(path.read_text())


def _called_name(call: ast.Call) -> str | None:
    function = call.func
    if isinstance(function, ast.Name):
        return function.id
    return function.attr if isinstance(function, ast.Attribute) else None


def _reason_argument(call: ast.Call, position: int) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "reason":
            return keyword.value
    return call.args[position] if len(call.args) > position else None


def _alternatives(expression: ast.expr | None) -> Iterator[ast.expr]:
    """The expressions a reason argument may be: both branches of a conditional."""
    if isinstance(expression, ast.IfExp):
        yield from _alternatives(expression.body)
        yield from _alternatives(expression.orelse)
    elif expression is not None:
        yield expression


def _forwarders(modules: list[tuple[str, ast.Module]]) -> Forwarders:
    """Every callable that builds a refusal, directly or through one that does, with the
    position of the parameter it gives as the refusal's reason."""
    known = dict(_direct)
    grown = True
    while grown:
        grown = False
        for _, module in modules:
            for function in ast.walk(module):
                if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    found = _forwarded(function, known)
                    if found is not None and known.get(function.name) != found:
                        assert function.name not in known, f"{function.name} is ambiguous"
                        known[function.name] = found
                        grown = True
    return known


def _forwarded(
    function: ast.FunctionDef | ast.AsyncFunctionDef, known: Forwarders
) -> tuple[type[errors.DomainError], int] | None:
    """The refusal `function` builds with one of its parameters as the reason; None when
    it builds none, or refusals of several classes (which one depends on the value)."""
    parameters = [each.arg for each in function.args.args if each.arg not in ("self", "cls")]
    built = set()
    for call in ast.walk(function):
        name = _called_name(call) if isinstance(call, ast.Call) else None
        if name is None or name not in known or not isinstance(call, ast.Call):
            continue
        refusal, position = known[name]
        for argument in _alternatives(_reason_argument(call, position)):
            if isinstance(argument, ast.Name) and argument.id in parameters:
                built.add((refusal, parameters.index(argument.id)))
    return built.pop() if len(built) == 1 else None


def _constants(module: ast.Module) -> dict[str, str]:
    return {
        target.id: statement.value.value
        for statement in module.body
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
        for target in statement.targets
        if isinstance(target, ast.Name) and isinstance(statement.value.value, str)
    }


def _status_of(refusal: type[errors.DomainError]) -> str:
    """The status name the error table gives the class (or its nearest mapped base)."""
    return status_code_for(refusal("a refusal", reason="INTERNAL")).name


def _built_refusals() -> Iterator[tuple[str, str, str]]:
    """(reason, the status name it is answered with, where) for every refusal in sight."""
    modules = list(_modules())
    forwarders = _forwarders(modules)
    for refusal in _refusal_classes.values():
        default = refusal.__dataclass_fields__["reason"].default
        if default is not dataclasses.MISSING:
            yield default, _status_of(refusal), refusal.__name__
    for where, module in modules:
        constants = _constants(module)
        for call in ast.walk(module):
            if not isinstance(call, ast.Call):
                continue
            name = _called_name(call)
            if name in forwarders:
                refusal, position = forwarders[name]
                code = _status_of(refusal)
                for argument in _alternatives(_reason_argument(call, position)):
                    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                        yield argument.value, code, f"{where}:{call.lineno}"
                    elif isinstance(argument, ast.Name) and argument.id in constants:
                        yield constants[argument.id], code, f"{where}:{call.lineno}"
            else:
                yield from _status_beside(call, where)


def _named_status(call: ast.Call) -> str | None:
    """The status a call names among its arguments (`grpc.StatusCode.X`, `code_pb2.X`)."""
    for argument in [*call.args, *(keyword.value for keyword in call.keywords)]:
        if isinstance(argument, ast.Attribute) and (
            (isinstance(argument.value, ast.Attribute) and argument.value.attr == "StatusCode")
            or (isinstance(argument.value, ast.Name) and argument.value.id == "code_pb2")
        ):
            return argument.attr
    return None


def _status_beside(call: ast.Call, where: str) -> Iterator[tuple[str, str, str]]:
    """The reasons a call that names a status gives with it: a literal reason among its
    arguments (`transport_error(grpc.StatusCode.X, text, "Y")`) or an ErrorInfo inside it
    (`status_pb2.Status(code=code_pb2.X, details=[… ErrorInfo(reason="Y") …])`)."""
    status = _named_status(call)
    if status is None:
        return
    arguments = [*call.args, *(keyword.value for keyword in call.keywords)]
    for argument in arguments:
        if isinstance(argument, ast.Constant) and argument.value in ERROR_REASONS:
            yield str(argument.value), status, f"{where}:{call.lineno}"
    for inner in ast.walk(call):
        if isinstance(inner, ast.Call) and _called_name(inner) == "ErrorInfo":
            reason = _reason_argument(inner, 0)
            if isinstance(reason, ast.Constant) and isinstance(reason.value, str):
                yield reason.value, status, f"{where}:{inner.lineno}"


def test_the_scan_finds_refusals_through_the_functions_that_build_them() -> None:
    forwarders = _forwarders(list(_modules()))
    assert forwarders["found"] == (errors.NotFound, 2)
    assert forwarders["take"] == (errors.RateLimited, 2)
    assert forwarders["current"][0] is errors.NotFound


def test_every_refusal_in_sight_has_the_status_its_reason_is_catalogued_with() -> None:
    wrong = [
        (reason, status, ERROR_REASONS[reason].status.name, where)
        for reason, status, where in _built_refusals()
        if reason in ERROR_REASONS and ERROR_REASONS[reason].status.name != status
    ]
    assert wrong == []


def test_every_reason_the_scan_cannot_see_is_known_with_where_it_is_built() -> None:
    seen = {reason for reason, _, _ in _built_refusals()} | {r.value for r in Refusal}
    assert set(ERROR_REASONS) - seen == set(_out_of_sight)


@pytest.mark.parametrize("refusal", list(Refusal))
def test_a_settlement_refusal_has_the_status_its_reason_is_catalogued_with(
    refusal: Refusal,
) -> None:
    error = settlement_refusal(refusal.value)
    assert status_code_for(error).name == ERROR_REASONS[refusal.value].status.name
