"""The catalogue of reasons: every machine-readable word Purse answers with.

Clients branch on these, so each is a stable UPPER_SNAKE constant listed here with what
it means; nothing else may reach a client. `ERROR_REASONS` are the `ErrorInfo.reason`
of refusals (every DomainError checks its reason against it), each a `Reason`: the status
it is answered with, what it means, what the caller should do, whether and when the
same request may be sent again, and whether the refusal is final for the request.
`NOT_APPLIED_REASONS` explain why a rule or coupon did not apply to a receipt
(CalculateCheck's `explain`); `DELIVERY_REASONS` say why a message to a customer was not
sent.

The catalogue is published as `docs/errors.md` (`catalogue_markdown`, written by `purse
reasons --markdown`) and as plain rows (`catalogue_rows`) for machine-readable documents.
Pure: the transports map `Status` to their own codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final


class Status(Enum):
    """The status a refusal is answered with: a google.rpc.Code by name and number."""

    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @property
    def http_status(self) -> int:
        """The HTTP status google.rpc.Code maps this code to (AIP-193)."""
        return _http_statuses[self]


_http_statuses: Final[Mapping[Status, int]] = {
    Status.CANCELLED: 499,
    Status.UNKNOWN: 500,
    Status.INVALID_ARGUMENT: 400,
    Status.DEADLINE_EXCEEDED: 504,
    Status.NOT_FOUND: 404,
    Status.ALREADY_EXISTS: 409,
    Status.PERMISSION_DENIED: 403,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.FAILED_PRECONDITION: 400,
    Status.ABORTED: 409,
    Status.OUT_OF_RANGE: 400,
    Status.UNIMPLEMENTED: 501,
    Status.INTERNAL: 500,
    Status.UNAVAILABLE: 503,
    Status.DATA_LOSS: 500,
    Status.UNAUTHENTICATED: 401,
}


class Retry(Enum):
    """Whether, and when, the same request may be sent again after a refusal (the value
    says so in words)."""

    NEVER = "the refusal is final: do not send the request again as it is"
    AFTER_FIX = "once the field or the state the action names is fixed"
    LATER = "the same request may succeed later: RetryInfo or the action says when"
    AT_ONCE = "a conflict or a closed stream: send the same request again now, same key"


@dataclass(frozen=True, slots=True)
class Reason:
    """One refusal. `final`: the same request (under the same check number, refund
    number or idempotency key where it has one) gets the same refusal however long the
    caller waits, because the request itself causes it or because it is stored as the
    key's answer; False when the same request may succeed later. `http`: the HTTP status
    the HTTP port answers with when it is not the status's own (405, 413, 415 for what
    HTTP itself refuses)."""

    status: Status
    meaning: str
    action: str
    retry: Retry
    final: bool
    http: int | None = None

    @property
    def http_status(self) -> int:
        return self.status.http_status if self.http is None else self.http


# Actions several reasons share.
_fix_fields = "correct the fields the BadRequest names and send the request again"
_stored = (
    "; a processed check or an operation keeps this refusal as its number's or key's"
    " answer: send the corrected one under a new number or key"
)
_sign_in_again = "sign in again (SignIn) and send the request with the new token"


def _bad_input(meaning: str, action: str = _fix_fields) -> Reason:
    """Malformed input: the request itself is refused, whenever it is sent."""
    return Reason(Status.INVALID_ARGUMENT, meaning, action, Retry.AFTER_FIX, final=True)


def _unknown(meaning: str, listed_by: str) -> Reason:
    """A resource the request names is not in the caller's business."""
    return Reason(
        Status.NOT_FOUND,
        meaning,
        f"name one this business has ({listed_by} lists them)",
        Retry.AFTER_FIX,
        final=True,
    )


ERROR_REASONS: Final[Mapping[str, Reason]] = {
    # Generic.
    "INVALID_ARGUMENT": _bad_input("a field of the request is malformed; the BadRequest names it"),
    "FAILED_PRECONDITION": Reason(
        Status.FAILED_PRECONDITION,
        "a refusal stored by an earlier version under a reason this one no longer has",
        "read the message" + _stored,
        Retry.NEVER,
        final=True,
    ),
    "INTERNAL": Reason(
        Status.INTERNAL,
        "a bug on the server's side; its log has the details",
        "tell the server's operator the time of the call; a request with a check number,"
        " refund number or idempotency key may be sent again later as it is",
        Retry.LATER,
        final=False,
    ),
    # Input.
    "AMOUNT_OUT_OF_RANGE": _bad_input(
        "a line amount or the check's sum is too large, or an operation's amount is not from"
        " 1 to its largest",
        "bring the amount the BadRequest names within its range and send the request again",
    ),
    "CHECK_SUM_MISMATCH": _bad_input(
        "the check's stated sum is not the sum of its lines",
        "send the sum of the lines as check.sum_minor_units, or leave it 0",
    ),
    "CURRENCY_MISMATCH": _bad_input(
        "the check is not in the program's currency",
        "send the check in the business's currency (GetTerminalSettings), or leave"
        " check.currency empty",
    ),
    "UNKNOWN_CURRENCY": _bad_input(
        "not an ISO 4217 currency code",
        "send an ISO 4217 code such as UAH, or leave check.currency empty",
    ),
    "EMPTY_CHECK": _bad_input("a check needs at least one line", "send the check's lines"),
    "TOO_MANY_LINES": _bad_input(
        "the check has more lines than allowed", "send at most the lines the message allows"
    ),
    "DUPLICATE": _bad_input(
        "the same coupon, account or certificate is named twice",
        "name each coupon, account and certificate once",
    ),
    "TIMESTAMP_OUT_OF_RANGE": _bad_input(
        "a timestamp outside the years Purse accepts",
        "send a timestamp within the range the violation states",
    ),
    "SALE_TIME_IN_FUTURE": Reason(
        Status.INVALID_ARGUMENT,
        "a processed sale's time lies ahead of the server's clock",
        "set the till's clock right and send the sale's real time",
        Retry.AFTER_FIX,
        final=False,
    ),
    "SALE_TIME_TOO_OLD": Reason(
        Status.INVALID_ARGUMENT,
        "a processed sale's time is older than an offline till may keep it",
        "the sale can no longer be uploaded: it neither earns nor spends anything",
        Retry.NEVER,
        final=True,
    ),
    "PHONE_INVALID": _bad_input(
        "not a phone number",
        "send the phone in international form (+380…) or the local form the business's"
        " phone prefix completes",
    ),
    "CARD_NUMBER_INVALID": _bad_input(
        "not a card number", "send the card number as printed: letters and digits"
    ),
    "CARD_QR_INVALID": _bad_input("not a card QR payload", "scan the card's QR code again"),
    "STEWARD_CODE_INVALID": _bad_input(
        "not a steward code", "ask the customer for the steward code again, digits only"
    ),
    "KIND_INVALID": _bad_input(
        "an identifier kind this call does not take", "use a kind the message lists"
    ),
    "IDENTIFIER_MISSING": _bad_input(
        "no customer identifier was given",
        "set one of phone, card_number, card_qr, app_token, steward_code",
    ),
    "QUESTIONNAIRE_INVALID": _bad_input("a name or language beyond its limits"),
    "REDEMPTION_TOO_LONG": _bad_input(
        "more coupons, certificates or account payments than allowed",
        "name at most 20 coupon codes, 10 certificate codes and 20 account payments a"
        " check, each code at most 64 characters",
    ),
    "REQUEST_UNDECODABLE": _bad_input(
        "the request's bytes are not the message the method takes",
        "send the method's request message: build the client from this server's protos",
    ),
    # HTTP/JSON: requests the HTTP port refuses before any method sees them.
    "REQUEST_TOO_LARGE": Reason(
        Status.INVALID_ARGUMENT,
        "the HTTP body (of a stream: a line) is larger than the server takes",
        "send a smaller request: fewer checks a message, or a stream instead of one body",
        Retry.AFTER_FIX,
        final=True,
        http=413,
    ),
    "CONTENT_TYPE_UNSUPPORTED": Reason(
        Status.INVALID_ARGUMENT,
        "the HTTP Content-Type is not one the method takes",
        "send application/json or application/proto (application/x-ndjson to the stream)",
        Retry.AFTER_FIX,
        final=True,
        http=415,
    ),
    "HTTP_METHOD_NOT_ALLOWED": Reason(
        Status.UNIMPLEMENTED,
        "an RPC's path is called with POST only",
        "call the RPC with POST",
        Retry.AFTER_FIX,
        final=True,
        http=405,
    ),
    "NOT_FOUND": Reason(
        Status.NOT_FOUND,
        "the HTTP port serves nothing at this path",
        "call POST /<package>.<Service>/<Method> as the OpenAPI document (/openapi.json) lists",
        Retry.AFTER_FIX,
        final=True,
    ),
    "TIMED_OUT": Reason(
        Status.DEADLINE_EXCEEDED,
        "an HTTP call was not answered within its deadline (Connect-Timeout-Ms or the"
        " server's longest)",
        "send the same request again, with a longer deadline if it allows one; a number or"
        " key is never applied twice",
        Retry.LATER,
        final=False,
    ),
    "FILTER_INVALID": _bad_input(
        "a part of a customer filter is malformed: a group with no filter, an operator the"
        " column does not take, or a value not of the column's type; the BadRequest names it"
    ),
    "FILTER_TOO_DEEP": _bad_input(
        "a customer filter nests its groups deeper than allowed",
        "nest groups at most 4 deep (an AND of ORs of ANDs of ORs) and send the request again",
    ),
    "FILTER_TOO_LARGE": _bad_input(
        "a customer filter has more conditions than allowed",
        "use at most 50 conditions in all and send the request again",
    ),
    "STRING_HAS_NUL": _bad_input(
        "a text field holds a NUL character",
        "remove the NUL character from the field the BadRequest names",
    ),
    "GOODS_CATEGORY_UNKNOWN": _bad_input(
        "a goods category code that is not in the business's catalogue",
        "use a live goods category code of the business exactly (ListGoodsCategories),"
        " case included, or leave it empty",
    ),
    "IDEMPOTENCY_KEY_INVALID": _bad_input(
        "an operation's idempotency key is empty, too long or has a character keys may not have",
        "send a key of 1 to 64 of A-Z a-z 0-9 . _ : -",
    ),
    "EXPIRY_OUT_OF_RANGE": _bad_input(
        "special points must expire after now and within the longest period allowed",
        "give an expiry after now and within the period the violation states",
    ),
    "COUPON_CODE_INVALID": _bad_input(
        "not a coupon code",
        "give 1 to 64 of A-Z a-z 0-9 . _ : / -, or no code for a generated one",
    ),
    # Credentials.
    "CREDENTIALS_MISSING": Reason(
        Status.UNAUTHENTICATED,
        "no bearer credential in the authorization metadata",
        "send the metadata entry 'authorization: Bearer <token or API key>'",
        Retry.AFTER_FIX,
        final=True,
    ),
    "WRONG_CREDENTIALS": Reason(
        Status.UNAUTHENTICATED,
        "login or password wrong",
        "check the login and the password; wrong passwords count towards a lockout",
        Retry.AFTER_FIX,
        final=True,
    ),
    "API_KEY_INVALID": Reason(
        Status.UNAUTHENTICATED,
        "the API key is unknown or revoked",
        "send a live key of this service's kind; ask the business's administrator for one",
        Retry.AFTER_FIX,
        final=True,
    ),
    "TOKEN_INVALID": Reason(
        Status.UNAUTHENTICATED,
        "the token is not one this server issued",
        _sign_in_again,
        Retry.AFTER_FIX,
        final=True,
    ),
    "TOKEN_EXPIRED": Reason(
        Status.UNAUTHENTICATED,
        "the token has expired; sign in again",
        _sign_in_again,
        Retry.AFTER_FIX,
        final=True,
    ),
    "TOKEN_REVOKED": Reason(
        Status.UNAUTHENTICATED,
        "the password changed after the token was issued",
        _sign_in_again + ", with the new password",
        Retry.AFTER_FIX,
        final=True,
    ),
    "APP_TOKEN_INVALID": _bad_input(
        "the customer app's QR token is not valid", "scan the customer app's QR code again"
    ),
    "APP_TOKEN_EXPIRED": Reason(
        Status.FAILED_PRECONDITION,
        "the customer app's QR token has expired",
        "ask the customer to show the app's current QR code and scan it again",
        Retry.AFTER_FIX,
        final=True,
    ),
    "SIGN_IN_RATE_LIMITED": Reason(
        Status.RESOURCE_EXHAUSTED,
        "too many wrong passwords for this login",
        "sign in again after RetryInfo's delay, when the lockout window ends",
        Retry.LATER,
        final=False,
    ),
    "SIGN_IN_BUSY": Reason(
        Status.RESOURCE_EXHAUSTED,
        "too many passwords are being checked at once",
        "sign in again after RetryInfo's delay (about a second)",
        Retry.LATER,
        final=False,
    ),
    "TERMINAL_DISABLED": Reason(
        Status.PERMISSION_DENIED,
        "the terminal is disabled",
        "ask the business's administrator to enable the terminal (UpdateTerminal)",
        Retry.AFTER_FIX,
        final=False,
    ),
    "TERMINAL_NOT_STEWARD": Reason(
        Status.PERMISSION_DENIED,
        "only a steward terminal issues steward codes",
        "issue steward codes from a terminal of kind STEWARD",
        Retry.NEVER,
        final=True,
    ),
    # Customers.
    "CUSTOMER_NOT_FOUND": Reason(
        Status.NOT_FOUND,
        "no customer of this business matches",
        "check the identifier, or register the customer (RegisterCustomer) and send again",
        Retry.AFTER_FIX,
        final=False,
    ),
    "CUSTOMER_REQUIRED": Reason(
        Status.FAILED_PRECONDITION,
        "redemption needs an identified customer",
        "identify the customer on the check, or send it without a redemption" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "CUSTOMER_BLACKLISTED": Reason(
        Status.FAILED_PRECONDITION,
        "the customer may not take part in transactions",
        "send the check without the customer and without a redemption; an administrator"
        " may change the customer's access type" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "IDENTIFIER_TAKEN": Reason(
        Status.ALREADY_EXISTS,
        "the card belongs to another customer",
        "use another card, or remove this one from the customer who holds it first",
        Retry.AFTER_FIX,
        final=False,
    ),
    "IDENTIFIER_NOT_FOUND": Reason(
        Status.NOT_FOUND,
        "the customer has no such card",
        "nothing to remove: the customer's card lists the identifiers it has",
        Retry.NEVER,
        final=True,
    ),
    "STEWARD_CODE_NOT_FOUND": Reason(
        Status.NOT_FOUND,
        "no such steward code in this business",
        "ask the customer for the code again; codes that redeem nothing count towards the"
        " terminal's lockout",
        Retry.AFTER_FIX,
        final=True,
    ),
    "STEWARD_CODE_USED": Reason(
        Status.FAILED_PRECONDITION,
        "the steward code was used already",
        "have the steward issue a new code (IssueStewardCode)",
        Retry.AFTER_FIX,
        final=True,
    ),
    "STEWARD_CODE_EXPIRED": Reason(
        Status.FAILED_PRECONDITION,
        "the steward code has expired",
        "have the steward issue a new code (IssueStewardCode)",
        Retry.AFTER_FIX,
        final=True,
    ),
    "STEWARD_CODE_RATE_LIMITED": Reason(
        Status.RESOURCE_EXHAUSTED,
        "too many wrong steward codes from this terminal",
        "identify the customer another way, or try a code again after RetryInfo's delay",
        Retry.LATER,
        final=False,
    ),
    "PROGRAM_NOT_FOUND": _unknown("no such program in this business", "ListPrograms"),
    # Spending.
    "INSUFFICIENT_POINTS": Reason(
        Status.FAILED_PRECONDITION,
        "not enough points available",
        "redeem at most the points available (CalculateCheck's points_redeemable_max)" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "INSUFFICIENT_BALANCE": Reason(
        Status.FAILED_PRECONDITION,
        "not enough in the customer account",
        "pay at most what is available, or ask for the maximum" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "INSUFFICIENT_CERTIFICATE_BALANCE": Reason(
        Status.FAILED_PRECONDITION,
        "not enough on the certificate",
        "calculate the check again: the certificate changed since" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "REDEMPTION_ABOVE_CAP": Reason(
        Status.FAILED_PRECONDITION,
        "more than the program lets this check take",
        "redeem at most what the check allows (points_redeemable_max), or ask for the"
        " maximum" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "BALANCE_LIMIT": Reason(
        Status.FAILED_PRECONDITION,
        "the credit would take a pocket past its largest balance",
        "credit less; an administrator may debit the pocket first" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "ACCOUNT_NOT_OWNED": Reason(
        Status.FAILED_PRECONDITION,
        "the customer has no such account",
        "pay only from account types the customer's membership lists" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "COUPON_NOT_OWNED": Reason(
        Status.FAILED_PRECONDITION,
        "the coupon is not the customer's",
        "name only the customer's own coupons or bearer coupons" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "COUPON_NOT_USABLE": Reason(
        Status.FAILED_PRECONDITION,
        "a named coupon is unknown, someone else's or not issued",
        "leave out the coupon codes the BadRequest names" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "COUPON_ALREADY_USED": Reason(
        Status.FAILED_PRECONDITION,
        "the coupon was used by another check meanwhile",
        "calculate the check again without that coupon" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "CERTIFICATE_UNKNOWN": Reason(
        Status.FAILED_PRECONDITION,
        "a certificate code on the check that is not in this business",
        "check the certificate codes the BadRequest names" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "CERTIFICATE_NOT_FOUND": _unknown("no such certificate in this business", "ListCertificates"),
    "CERTIFICATE_NOT_OWNED": Reason(
        Status.FAILED_PRECONDITION,
        "the certificate is not among the check's",
        "pay only with the certificates the check names" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "CERTIFICATE_EXPIRED": Reason(
        Status.FAILED_PRECONDITION,
        "the certificate has expired",
        "leave the certificate out of the redemption" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "POINTS_REDEMPTION_NOT_ALLOWED": Reason(
        Status.FAILED_PRECONDITION,
        "the customer's access type does not redeem points",
        "send the check without redeeming points" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    "CHECK_SUM_BELOW_MINIMUM": Reason(
        Status.FAILED_PRECONDITION,
        "the check is below the sum from which points may pay",
        "send the check without redeeming points" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    # Transactions.
    "IDEMPOTENCY_KEY_REUSED": Reason(
        Status.ALREADY_EXISTS,
        "the check number, refund number or idempotency key was used for another request",
        "send this request under a new number or key; the old one keeps its first answer",
        Retry.AFTER_FIX,
        final=True,
    ),
    "TRANSACTION_NOT_FOUND": Reason(
        Status.NOT_FOUND,
        "no such transaction in this business",
        "check the transaction id or check number (a check number is this terminal's);"
        " after a lost answer send the ProcessCheck again instead, it is idempotent",
        Retry.AFTER_FIX,
        final=False,
    ),
    "TRANSACTION_NOT_PENDING": Reason(
        Status.FAILED_PRECONDITION,
        "the transaction no longer waits for its PIN",
        "read the transaction (GetTransaction): it was confirmed, cancelled, expired or"
        " locked meanwhile",
        Retry.NEVER,
        final=True,
    ),
    "TRANSACTION_NOT_COMPLETED": Reason(
        Status.FAILED_PRECONDITION,
        "only a completed sale can be refunded",
        "a pending sale is cancelled (CancelTransaction), not refunded; others have"
        " nothing to refund",
        Retry.NEVER,
        final=True,
    ),
    "TRANSACTION_NOT_CANCELLABLE": Reason(
        Status.FAILED_PRECONDITION,
        "the transaction is in a state that cannot be cancelled",
        "read the transaction: an expired, locked or rejected one holds nothing to release",
        Retry.NEVER,
        final=True,
    ),
    "TRANSACTION_NOT_A_SALE": Reason(
        Status.FAILED_PRECONDITION,
        "an administrator's operation is not refunded or cancelled",
        "make the opposite operation instead (ApplyCustomerOperation)",
        Retry.NEVER,
        final=True,
    ),
    "TRANSACTION_LOCKED": Reason(
        Status.FAILED_PRECONDITION,
        "too many wrong PINs: the transaction is locked, its holds released",
        "process the check again under a new check number if the customer still wants"
        " the redemption",
        Retry.NEVER,
        final=True,
    ),
    "ALREADY_REFUNDED": Reason(
        Status.FAILED_PRECONDITION,
        "nothing is left to refund of these lines",
        "read the transaction's refunds: there is nothing more to return",
        Retry.NEVER,
        final=True,
    ),
    "CANCEL_NOT_ALLOWED": Reason(
        Status.FAILED_PRECONDITION,
        "the program does not cancel completed sales",
        "refund the sale instead (RefundTransaction)",
        Retry.NEVER,
        final=True,
    ),
    "CANCEL_TOO_LATE": Reason(
        Status.FAILED_PRECONDITION,
        "only a sale of today can be cancelled",
        "refund the sale instead (RefundTransaction)",
        Retry.NEVER,
        final=True,
    ),
    "PIN_WRONG": Reason(
        Status.FAILED_PRECONDITION,
        "wrong PIN; metadata attempts_left says how many are left",
        "ask the customer for the PIN again; after the last attempt the transaction locks",
        Retry.AFTER_FIX,
        final=True,
    ),
    "PIN_EXPIRED": Reason(
        Status.FAILED_PRECONDITION,
        "no PIN is waiting for the transaction",
        "ask for a new PIN (ResendCode) and confirm with it",
        Retry.AFTER_FIX,
        final=True,
    ),
    "PIN_RESEND_RATE_LIMITED": Reason(
        Status.RESOURCE_EXHAUSTED,
        "too many PINs sent to this phone",
        "ask for the PIN again after RetryInfo's delay",
        Retry.LATER,
        final=False,
    ),
    "BALANCE_CHANGED": Reason(
        Status.FAILED_PRECONDITION,
        "a balance changed after the transaction was calculated",
        "read the transaction and the customer's balances again, then decide",
        Retry.AFTER_FIX,
        final=False,
    ),
    "CONCURRENT_CHANGE": Reason(
        Status.ABORTED,
        "the customer's balances kept changing; nothing was applied",
        "send the same check again, under the same check number",
        Retry.AT_ONCE,
        final=False,
    ),
    "CONCURRENT_UPDATE": Reason(
        Status.ABORTED,
        "a database conflict rolled the change back; nothing was applied",
        "send the same request again after RetryInfo's delay, under the same number or key",
        Retry.AT_ONCE,
        final=False,
    ),
    # The back office.
    "ROLE_NOT_ALLOWED": Reason(
        Status.PERMISSION_DENIED,
        "the administrator's role may not make this call",
        "ask an administrator whose role allows it: an owner for administrators and"
        " others' keys, a manager or an owner for changes",
        Retry.NEVER,
        final=True,
    ),
    "OPERATOR_KEY_INVALID": Reason(
        Status.UNAUTHENTICATED,
        "the operator key is unknown or revoked",
        "send a live operator key (purse operator-key create, on the server's machine)",
        Retry.AFTER_FIX,
        final=True,
    ),
    "VERSION_MISMATCH": Reason(
        Status.ABORTED,
        "the resource changed since the version the update names",
        "read the resource again, apply the change to what it holds now, and send it with"
        " the version read",
        Retry.AFTER_FIX,
        final=True,
    ),
    "ARCHIVED": Reason(
        Status.FAILED_PRECONDITION,
        "the resource is archived and can no longer be used or changed",
        "use or create a live one",
        Retry.NEVER,
        final=True,
    ),
    "IN_USE": Reason(
        Status.FAILED_PRECONDITION,
        "the resource is still used; the message says by what",
        "change or archive what the message names first, then send the request again",
        Retry.AFTER_FIX,
        final=False,
    ),
    "LOGIN_TAKEN": Reason(
        Status.ALREADY_EXISTS,
        "the login belongs to someone else already",
        "choose another login (terminal logins are unique on the whole instance)",
        Retry.AFTER_FIX,
        final=True,
    ),
    "BUSINESS_NOT_FOUND": Reason(
        Status.NOT_FOUND,
        "no such business on this instance",
        "ask the instance's operator: the business the credentials name is gone",
        Retry.NEVER,
        final=True,
    ),
    "CUSTOMER_CATEGORY_NOT_FOUND": _unknown(
        "no such customer category in this business", "ListCustomerCategories"
    ),
    "ADMINISTRATOR_NOT_FOUND": _unknown(
        "no such administrator in this business", "ListAdministrators"
    ),
    "API_KEY_NOT_FOUND": _unknown(
        "no such API key in this business", "ListApiKeys, ListTerminalApiKeys"
    ),
    "LAST_OWNER": Reason(
        Status.FAILED_PRECONDITION,
        "a business keeps at least one owner who can sign in",
        "make another administrator an owner first",
        Retry.AFTER_FIX,
        final=False,
    ),
    "CODE_TAKEN": Reason(
        Status.ALREADY_EXISTS,
        "the code is used by another item of this business already",
        "choose another code, or update the item that has it",
        Retry.AFTER_FIX,
        final=True,
    ),
    "FIELD_IMMUTABLE": Reason(
        Status.FAILED_PRECONDITION,
        "the field is set at creation and cannot change; the violation names it",
        "send the field as it was created; create a new resource for another value",
        Retry.AFTER_FIX,
        final=True,
    ),
    "CAP_BELOW_ISSUED": Reason(
        Status.FAILED_PRECONDITION,
        "a coupon series' cap would be below the coupons it has issued",
        "set the cap at least to the coupons issued (the violation says how many)",
        Retry.AFTER_FIX,
        final=True,
    ),
    "GOODS_CATEGORY_NOT_FOUND": _unknown(
        "no such goods category in this business", "ListGoodsCategories"
    ),
    "GOODS_NOT_FOUND": _unknown("no product with this code in this business", "ListGoods"),
    "ACCOUNT_TYPE_NOT_FOUND": _unknown("no such account type in this business", "ListAccountTypes"),
    "COUPON_SERIES_NOT_FOUND": _unknown(
        "no such coupon series in this business", "ListCouponSeries"
    ),
    "NAME_TAKEN": Reason(
        Status.ALREADY_EXISTS,
        "the name belongs to another live item of this kind in the business already",
        "choose another name, or rename or archive the item that has it",
        Retry.AFTER_FIX,
        final=True,
    ),
    # Saved segments, news and information.
    "SEGMENT_NOT_FOUND": _unknown(
        "no such saved segment in this business; where one selects customers, an archived"
        " one is not found either",
        "ListSavedSegments",
    ),
    "NEWS_ITEM_NOT_FOUND": _unknown(
        "no such news item in this business; where a published one is needed, an archived"
        " one or one outside its publication window is not found either",
        "ListNewsItems",
    ),
    # Operations on one customer.
    "TERMINAL_NOT_FOUND": _unknown("no such terminal in this business", "ListTerminals"),
    "OPERATION_TERMINAL_DISABLED": Reason(
        Status.FAILED_PRECONDITION,
        "the terminal an operation is to be recorded under is disabled",
        "name an enabled terminal, or enable this one (UpdateTerminal)",
        Retry.AFTER_FIX,
        final=False,
    ),
    "ACCOUNT_KIND_NOT_ADJUSTABLE": Reason(
        Status.FAILED_PRECONDITION,
        "only money and products accounts are credited or debited by hand",
        "achievements accounts change with purchases only" + _stored,
        Retry.NEVER,
        final=True,
    ),
    "COUPON_SERIES_EXHAUSTED": Reason(
        Status.FAILED_PRECONDITION,
        "the coupon series has issued every coupon its cap allows",
        "raise the series' cap (UpdateCouponSeries) or issue from another series" + _stored,
        Retry.AFTER_FIX,
        final=True,
    ),
    # Bulk actions.
    "SELECTION_TOO_LARGE": Reason(
        Status.FAILED_PRECONDITION,
        "the selection holds more customers than one bulk action takes",
        "narrow the filter or the scope, or split the selection in parts",
        Retry.AFTER_FIX,
        final=True,
    ),
    "BULK_OPERATION_NOT_FOUND": _unknown(
        "no such bulk operation in this business", "ListOperations"
    ),
    "BULK_TOKEN_INVALID": Reason(
        Status.FAILED_PRECONDITION,
        "the token is not the one the operation's dry run answered with",
        "send the token DryRunBulkAction answered for this very operation",
        Retry.AFTER_FIX,
        final=True,
    ),
    "BULK_OPERATION_NOT_DRAFT": Reason(
        Status.FAILED_PRECONDITION,
        "the operation started, finished or was cancelled already, or its dry run expired",
        "read it (GetOperation); to run the action again, dry-run it again",
        Retry.NEVER,
        final=True,
    ),
    # The back office: setup.
    "POINT_OF_SALE_NOT_FOUND": _unknown(
        "no such point of sale in this business, or it is archived", "ListPointsOfSale"
    ),
    # The server.
    "QUEUE_FULL": Reason(
        Status.RESOURCE_EXHAUSTED,
        "the write queue stayed full until the deadline; nothing was applied",
        "send the same request again after a short wait, or with a longer deadline",
        Retry.LATER,
        final=False,
    ),
    "SHUTTING_DOWN": Reason(
        Status.RESOURCE_EXHAUSTED,
        "the server is shutting down; nothing was applied",
        "send the same request to another server, or to this one once it is back",
        Retry.LATER,
        final=False,
    ),
    "STREAM_IDLE": Reason(
        Status.DEADLINE_EXCEEDED,
        "the stream sent no message for too long and was closed; nothing was cut off",
        "open a new stream and go on; send a message more often than the idle limit",
        Retry.AT_ONCE,
        final=False,
    ),
    "STREAM_LIFETIME_OVER": Reason(
        Status.DEADLINE_EXCEEDED,
        "the stream was open for its longest lifetime; nothing was cut off",
        "open a new stream and go on",
        Retry.AT_ONCE,
        final=False,
    ),
    "EXPORTS_BUSY": Reason(
        Status.RESOURCE_EXHAUSTED,
        "the server is running as many exports as it runs at once",
        "export again after RetryInfo's delay, or once another export has finished",
        Retry.LATER,
        final=False,
    ),
    "EXPORT_TOO_LONG": Reason(
        Status.DEADLINE_EXCEEDED,
        "the export streamed for longer than the server allows one to, or its reader stopped"
        " reading; the file ends short",
        "read the stream as it comes; narrow the selection (a filter, a scope) and export again",
        Retry.AFTER_FIX,
        final=False,
    ),
    "DEPENDENCY_UNAVAILABLE": Reason(
        Status.UNAVAILABLE,
        "PostgreSQL or Redis is unavailable",
        "send the same request again later, backing off; a number or key is never applied twice",
        Retry.LATER,
        final=False,
    ),
}

NOT_APPLIED_REASONS: Final[Mapping[str, str]] = {
    "ACCRUAL_NOT_ALLOWED": "the customer's access type accrues no points",
    "CUSTOMER_CATEGORY_NOT_SELECTED": "the rule is for other customer categories",
    "POINT_OF_SALE_NOT_SELECTED": "the rule is for other points of sale",
    "DAY_OF_WEEK_NOT_SELECTED": "the rule does not apply on this day of the week",
    "OUTSIDE_TIME_WINDOWS": "the rule does not apply at this time of day",
    "NO_MATCHING_LINES": "no line of the check is one the rule selects",
    "OUTRANKED": "the rule selects lines of the check, but rules before it took them",
    "CHECK_SUM_BELOW_MINIMUM": "the check is below the rule's minimum sum",
    "NOTHING_TO_DISCOUNT": "nothing left on the lines to discount",
    "NOTHING_TO_PAY": "nothing on the check it may pay",
    "COUPON_EXPIRED": "the coupon has expired",
    "COUPON_NOT_OWNED": "the coupon is not the customer's",
}

DELIVERY_REASONS: Final[Mapping[str, str]] = {
    "PARTICIPATION_NOT_CONFIRMED": "the customer has not confirmed participation",
    "PIN_UNREADABLE": "the sealed PIN could not be opened",
    "PIN_SEALED_BY_OLDER_VERSION": "the PIN was sealed by an older version; resend it",
    "TEMPLATE_INVALID": "the message template could not be filled",
    "SEND_DEADLINE": "the message could not be sent before its deadline",
    "TIMEOUT": "the provider did not answer in time",
    "NO_DEVICE": "a push message for a customer with no live device token",
    "PUSH_NOT_DELIVERED": "the push gateway accepted the message for none of the tokens",
    "DEVICE_NOT_REGISTERED": "the push gateway knows none of the customer's tokens (revoked)",
}


def catalogue_rows() -> list[dict[str, str | int | bool]]:
    """Every error reason as a plain, JSON-ready row, in the catalogue's order."""
    return [
        {
            "reason": name,
            "status": reason.status.name,
            "code": reason.status.value,
            "http_status": reason.http_status,
            "meaning": reason.meaning,
            "action": reason.action,
            "retry": reason.retry.name,
            "final": reason.final,
        }
        for name, reason in ERROR_REASONS.items()
    ]


_document_head = """\
# Errors

<!-- Generated from purse.domain.reasons by `make errors-docs` (`purse reasons --markdown`);
edit the catalogue, not this file. -->

A refused call ends with a gRPC status whose `grpc-status-details-bin` trailer holds a
`google.rpc.Status` with an `ErrorInfo`: domain `purse` and one of the reasons below.
Bad input adds a `BadRequest` naming each wrong field by its path in the request, and a
refusal worth waiting out adds a `RetryInfo`. `ProcessChecks` answers each check of a
message with its own `CheckError` (code, reason, message, field violations) and ends the
stream only for the reasons of the stream itself. Over the HTTP port the same status is
a Connect error body (`code`, `message`, `details`) answered with the HTTP status below.
A status without an `ErrorInfo` comes from gRPC itself: the caller's own deadline
(`DEADLINE_EXCEEDED`), a server that cannot be reached (`UNAVAILABLE`), a cancelled call
(`CANCELLED`).

Each RPC's comment in `protos/` names the reasons it can return beyond those every call
of its service can return (listed in the service's comment).

**Retry** says whether the same request may be sent again:
"""

_document_columns = (
    "| reason | status | HTTP | meaning | what to do | retry | final |\n"
    "|---|---|---|---|---|---|---|\n"
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def catalogue_markdown() -> str:
    """`docs/errors.md`: the error catalogue as a Markdown table, with a legend."""
    legend = "".join(f"- `{retry.name}`: {retry.value}.\n" for retry in Retry)
    final = (
        "\n**Final** says whether the same request (under the same check number, refund"
        " number or\nidempotency key) gets the same refusal however long the caller waits.\n\n"
    )
    rows = "".join(
        f"| `{name}` | {reason.status.name} | {reason.http_status}"
        f" | {_cell(reason.meaning)} | {_cell(reason.action)} | {reason.retry.name}"
        f" | {'yes' if reason.final else 'no'} |\n"
        for name, reason in ERROR_REASONS.items()
    )
    return _document_head + legend + final + _document_columns + rows
