"""The catalogue of reasons: every machine-readable word Purse answers with.

Clients branch on these, so each is a stable UPPER_SNAKE constant listed here with what
it means; nothing else may reach a client. `ERROR_REASONS` are the `ErrorInfo.reason`
of refusals (every DomainError checks its reason against it); `NOT_APPLIED_REASONS`
explain why a rule or coupon did not apply to a receipt (CalculateCheck's `explain`);
`DELIVERY_REASONS` say why a message to a customer was not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

ERROR_REASONS: Final[Mapping[str, str]] = {
    # Generic defaults of each refusal class.
    "DOMAIN_ERROR": "a refusal with no more specific reason",
    "INVALID_ARGUMENT": "a field of the request is malformed; the violations name it",
    "NOT_FOUND": "something the request names does not exist in the caller's business",
    "ALREADY_EXISTS": "the request would create something that exists already",
    "FAILED_PRECONDITION": "the request is well-formed but the state of things refuses it",
    "ABORTED": "a concurrent change got in the way; nothing was applied, send it again",
    "UNAUTHENTICATED": "credentials are missing, wrong or expired",
    "PERMISSION_DENIED": "the caller is known but may not do this",
    "RATE_LIMITED": "too many attempts; RetryInfo says when to try again",
    "OVERLOADED": "the server cannot take more work before the deadline",
    "UNAVAILABLE": "a dependency is down; the same request may succeed later",
    "TIMED_OUT": "a time limit of the call ran out",
    "INTERNAL": "a bug on the server's side; its log has the details",
    # Input.
    "AMOUNT_OUT_OF_RANGE": "a line amount or the check's sum is too large, or an operation's"
    " amount is not from 1 to its largest",
    "CHECK_SUM_MISMATCH": "the check's stated sum is not the sum of its lines",
    "CURRENCY_MISMATCH": "the check is not in the program's currency",
    "UNKNOWN_CURRENCY": "not an ISO 4217 currency code",
    "EMPTY_CHECK": "a check needs at least one line",
    "TOO_MANY_LINES": "the check has more lines than allowed",
    "DUPLICATE": "the same coupon, account or certificate is named twice",
    "TIMESTAMP_OUT_OF_RANGE": "a timestamp outside the years Purse accepts",
    "SALE_TIME_IN_FUTURE": "a processed sale's time lies ahead of the server's clock",
    "SALE_TIME_TOO_OLD": "a processed sale's time is older than an offline till may keep it",
    "PHONE_INVALID": "not a phone number",
    "CARD_NUMBER_INVALID": "not a card number",
    "CARD_QR_INVALID": "not a card QR payload",
    "STEWARD_CODE_INVALID": "not a steward code",
    "KIND_INVALID": "an identifier kind this call does not take",
    "IDENTIFIER_MISSING": "no customer identifier was given",
    "QUESTIONNAIRE_INVALID": "a name or language beyond its limits",
    "REDEMPTION_TOO_LONG": "more coupons, certificates or account payments than allowed",
    "REQUEST_UNDECODABLE": "the request's bytes are not the message the method takes",
    # HTTP/JSON: requests the HTTP port refuses before any method sees them.
    "REQUEST_TOO_LARGE": "the HTTP body (a stream: a line) is larger than the server takes",
    "CONTENT_TYPE_UNSUPPORTED": "the HTTP Content-Type is not one the method takes",
    "HTTP_METHOD_NOT_ALLOWED": "an RPC's path is called with POST only",
    "STRING_HAS_NUL": "a text field holds a NUL character",
    "GOODS_CATEGORY_UNKNOWN": "a goods category code that is not in the business's catalogue",
    "IDEMPOTENCY_KEY_INVALID": "an operation's idempotency key is empty, too long or has a"
    " character keys may not have",
    "EXPIRY_OUT_OF_RANGE": "special points must expire after now and within the longest period"
    " allowed",
    "COUPON_CODE_INVALID": "not a coupon code",
    # Credentials.
    "CREDENTIALS_MISSING": "no bearer credential in the authorization metadata",
    "WRONG_CREDENTIALS": "login or password wrong",
    "API_KEY_INVALID": "the API key is unknown or revoked",
    "TOKEN_INVALID": "the token is not one this server issued",
    "TOKEN_EXPIRED": "the token has expired; sign in again",
    "TOKEN_REVOKED": "the terminal's password changed after the token was issued",
    "APP_TOKEN_INVALID": "the customer app's QR token is not valid",
    "APP_TOKEN_EXPIRED": "the customer app's QR token has expired",
    "SIGN_IN_RATE_LIMITED": "too many wrong passwords for this login",
    "SIGN_IN_BUSY": "too many passwords are being checked at once; retry shortly",
    "TERMINAL_DISABLED": "the terminal is disabled",
    "TERMINAL_NOT_STEWARD": "only a steward terminal issues steward codes",
    # Customers.
    "CUSTOMER_NOT_FOUND": "no customer of this business matches",
    "CUSTOMER_REQUIRED": "redemption needs an identified customer",
    "CUSTOMER_BLACKLISTED": "the customer may not take part in transactions",
    "IDENTIFIER_TAKEN": "the card belongs to another customer",
    "IDENTIFIER_NOT_FOUND": "the customer has no such card",
    "STEWARD_CODE_NOT_FOUND": "no such steward code in this business",
    "STEWARD_CODE_USED": "the steward code was used already",
    "STEWARD_CODE_EXPIRED": "the steward code has expired",
    "STEWARD_CODE_RATE_LIMITED": "too many wrong steward codes from this terminal",
    "PROGRAM_NOT_FOUND": "no such program in this business",
    # Spending.
    "INSUFFICIENT_POINTS": "not enough points available",
    "INSUFFICIENT_BALANCE": "not enough in the customer account",
    "INSUFFICIENT_CERTIFICATE_BALANCE": "not enough on the certificate",
    "REDEMPTION_ABOVE_CAP": "more points than the program lets this check take",
    "BALANCE_LIMIT": "the credit would take a pocket past its largest balance",
    "ACCOUNT_NOT_OWNED": "the customer has no such account",
    "COUPON_NOT_OWNED": "the coupon is not the customer's",
    "COUPON_NOT_USABLE": "a named coupon is unknown, someone else's or not issued",
    "COUPON_EXPIRED": "the coupon has expired",
    "COUPON_ALREADY_USED": "the coupon was used by another check meanwhile",
    "CERTIFICATE_NOT_FOUND": "no such certificate in this business",
    "CERTIFICATE_NOT_OWNED": "the certificate is not among the check's",
    "CERTIFICATE_EXPIRED": "the certificate has expired",
    "POINTS_REDEMPTION_NOT_ALLOWED": "the customer's access type does not redeem points",
    "CHECK_SUM_BELOW_MINIMUM": "the check is below the sum from which points may pay",
    # Transactions.
    "IDEMPOTENCY_KEY_REUSED": "the check or refund number was used for another request",
    "TRANSACTION_NOT_FOUND": "no such transaction in this business",
    "TRANSACTION_NOT_PENDING": "the transaction no longer waits for its PIN",
    "TRANSACTION_NOT_COMPLETED": "only a completed sale can be refunded",
    "TRANSACTION_NOT_CANCELLABLE": "the transaction is in a state that cannot be cancelled",
    "TRANSACTION_NOT_A_SALE": "an administrator's operation is not refunded or cancelled; make"
    " the opposite operation instead",
    "TRANSACTION_LOCKED": "too many wrong PINs: the transaction is locked, its holds released",
    "ALREADY_REFUNDED": "nothing is left to refund of these lines",
    "CANCEL_NOT_ALLOWED": "the program does not cancel completed sales",
    "CANCEL_TOO_LATE": "only a sale of today can be cancelled",
    "PIN_WRONG": "wrong PIN; metadata attempts_left says how many are left",
    "PIN_EXPIRED": "no PIN is waiting for the transaction; ask for a new one",
    "PIN_RESEND_RATE_LIMITED": "too many PINs sent to this phone",
    "BALANCE_CHANGED": "a balance changed after the check was calculated",
    "CONCURRENT_CHANGE": "the customer's balances kept changing; send the check again",
    "CONCURRENT_UPDATE": "a database conflict rolled the change back; send it again",
    # The back office.
    "ROLE_NOT_ALLOWED": "the administrator's role may not make this call",
    "OPERATOR_KEY_INVALID": "the operator key is unknown or revoked",
    "VERSION_MISMATCH": "the resource changed since the version the update names; read it again",
    "ARCHIVED": "the resource is archived and can no longer be used or changed",
    "IN_USE": "the resource is still used; the message says by what",
    "LOGIN_TAKEN": "the login belongs to someone else already",
    "BUSINESS_NOT_FOUND": "no such business on this instance",
    "CUSTOMER_CATEGORY_NOT_FOUND": "no such customer category in this business",
    "ADMINISTRATOR_NOT_FOUND": "no such administrator in this business",
    "API_KEY_NOT_FOUND": "no such API key in this business",
    "LAST_OWNER": "a business keeps at least one owner who can sign in",
    "CODE_TAKEN": "the code is used by another item of this business already",
    "FIELD_IMMUTABLE": "the field is set at creation and cannot change; the violation names it",
    "CAP_BELOW_ISSUED": "a coupon series' cap would be below the coupons it has issued",
    "GOODS_CATEGORY_NOT_FOUND": "no such goods category in this business",
    "GOODS_NOT_FOUND": "no product with this code in this business",
    "ACCOUNT_TYPE_NOT_FOUND": "no such account type in this business",
    "COUPON_SERIES_NOT_FOUND": "no such coupon series in this business",
    # Operations on one customer.
    "TERMINAL_NOT_FOUND": "no such terminal in this business",
    "ACCOUNT_KIND_NOT_ADJUSTABLE": "only money and products accounts are credited or debited"
    " by hand",
    "COUPON_SERIES_EXHAUSTED": "the coupon series has issued every coupon its cap allows",
    # The back office: setup.
    "POINT_OF_SALE_NOT_FOUND": "no such point of sale in this business, or it is archived",
    # The server.
    "QUEUE_FULL": "the write queue stayed full until the deadline",
    "SHUTTING_DOWN": "the server is shutting down; retry on another",
    "STREAM_IDLE": "the stream sent no message for too long and was closed",
    "STREAM_LIFETIME_OVER": "the stream was open for its longest lifetime; open a new one",
    "DEPENDENCY_UNAVAILABLE": "PostgreSQL or Redis is unavailable; retry later",
}

NOT_APPLIED_REASONS: Final[Mapping[str, str]] = {
    "ACCRUAL_NOT_ALLOWED": "the customer's access type accrues no points",
    "CUSTOMER_CATEGORY_NOT_SELECTED": "the rule is for other customer categories",
    "POINT_OF_SALE_NOT_SELECTED": "the rule is for other points of sale",
    "DAY_OF_WEEK_NOT_SELECTED": "the rule does not apply on this day of the week",
    "OUTSIDE_TIME_WINDOWS": "the rule does not apply at this time of day",
    "NO_MATCHING_LINES": "no line of the check is one the rule selects",
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
}
