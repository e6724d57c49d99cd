"""AdminService's bulk actions: DryRunBulkAction, StartBulkAction, GetOperation,
ListOperations, CancelOperation — the contract's messages to and from the use case.

The selection is kept with its operation as the contract's canonical JSON of
`BulkSelection`, so that GetOperation shows it as it was given.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from purse.admin.v1 import admin_service_pb2 as pb
from purse.admin.v1 import bulk_actions_pb2 as bulk_pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.customer_list import filter_from_proto, scope_from_proto
from purse.api.grpc.admin.loyalty_programs import NOTICE_CHANNELS
from purse.api.grpc.common.calls import Context
from purse.api.grpc.common.mapping import ACCESS_TYPES, moment_from_proto, timestamp
from purse.domain.administrators import Access, AdministratorContext
from purse.domain.bulk_actions import (
    AccessTypeChange,
    BulkAction,
    BulkMessage,
    CategoryChange,
    Change,
    MessageOnly,
    NewsNotice,
    OperationState,
    action_from_document,
)
from purse.domain.customer_operations import AccountCredit, CouponIssue, PointsCredit
from purse.domain.errors import FieldViolation, InvalidArgument, invalid
from purse.domain.terminals import NoticeChannel
from purse.service.admin.bulk_actions import BulkActions, Selection
from purse.store.postgres.bulk_actions import OperationRow
from purse.store.postgres.customer_list import ListScope

# SMS, push and smart: a bulk message has no NONE.
_channels = {
    number: channel
    for channel, number in NOTICE_CHANNELS.items()
    if channel is not NoticeChannel.NONE
}
_access_types = {number: access_type for access_type, number in ACCESS_TYPES.items()}
_states = {
    OperationState.DRAFT: bulk_pb.OPERATION_STATE_DRAFT,
    OperationState.RUNNING: bulk_pb.OPERATION_STATE_RUNNING,
    OperationState.SUCCEEDED: bulk_pb.OPERATION_STATE_SUCCEEDED,
    OperationState.CANCELLED: bulk_pb.OPERATION_STATE_CANCELLED,
}
_oneof_names = (
    "credit_points, credit_account, issue_coupons, change_category, change_access_type,"
    " send_message, send_news"
)


def action_from_proto(message: bulk_pb.BulkAction, path: str = "action") -> BulkAction:
    which = message.WhichOneof("action")
    change: Change
    if which == "credit_points":
        sent = message.credit_points
        expires_at = (
            moment_from_proto(sent.expire_time, f"{path}.credit_points.expire_time")
            if sent.HasField("expire_time")
            else None
        )
        change = PointsCredit(sent.points_hundredths, expires_at, sent.valid_days)
    elif which == "credit_account":
        change = AccountCredit(
            message.credit_account.account_type_id, message.credit_account.amount
        )
    elif which == "issue_coupons":
        coupon = message.issue_coupons
        change = CouponIssue(coupon.series_id, coupon.code or None)
    elif which == "change_category":
        change = CategoryChange(message.change_category.category_id)
    elif which == "change_access_type":
        access = _access_types.get(message.change_access_type.access_type)
        if access is None:
            raise invalid(
                f"{path}.change_access_type.access_type", "FULL, LIMITED, NONE or BLACKLISTED"
            )
        change = AccessTypeChange(access)
    elif which == "send_message":
        change = MessageOnly()
    elif which == "send_news":
        change = NewsNotice(message.send_news.news_item_id)
    else:
        raise invalid(path, f"set one of {_oneof_names}")
    bulk_message = None
    if message.HasField("message"):
        channel = _channels.get(message.message.channel)
        if channel is None:
            raise invalid(f"{path}.message.channel", "SMS, PUSH or SMART")
        bulk_message = BulkMessage(channel, message.message.template)
    return BulkAction(change, bulk_message)


def action_to_proto(action: BulkAction) -> bulk_pb.BulkAction:
    message = bulk_pb.BulkAction()
    change = action.change
    if isinstance(change, PointsCredit):
        message.credit_points.points_hundredths = change.points_hundredths
        if change.valid_days:
            message.credit_points.valid_days = change.valid_days
        elif change.expires_at is not None:
            message.credit_points.expire_time.FromDatetime(change.expires_at)
    elif isinstance(change, AccountCredit):
        message.credit_account.account_type_id = change.account_type_id
        message.credit_account.amount = change.amount
    elif isinstance(change, CouponIssue):
        message.issue_coupons.series_id = change.series_id
    elif isinstance(change, CategoryChange):
        message.change_category.category_id = change.category_id
    elif isinstance(change, AccessTypeChange):
        message.change_access_type.access_type = ACCESS_TYPES[change.access_type]
    elif isinstance(change, MessageOnly):
        message.send_message.SetInParent()
    else:
        message.send_news.news_item_id = change.news_item_id
    if action.message is not None:
        message.message.channel = NOTICE_CHANNELS[action.message.channel]
        message.message.template = action.message.template
    return message


def operation_to_proto(row: OperationRow) -> bulk_pb.Operation:
    estimate = row.estimate
    message = bulk_pb.Operation(
        operation_id=row.operation_id,
        action=action_to_proto(action_from_document(row.action)),
        estimate=bulk_pb.BulkEstimate(
            customers=estimate.get("customers", 0),
            changed=estimate.get("changed", 0),
            amount_total=estimate.get("amount_total", 0),
            messages_sms=estimate.get("messages_sms", 0),
            messages_push=estimate.get("messages_push", 0),
            messages_rejected=estimate.get("rejected", 0),
            sms_segments=estimate.get("sms_segments", 0),
            sms_cost_minor_units=estimate.get("sms_cost_minor_units", 0),
            skipped=estimate.get("skipped", 0),
        ),
        state=_states[row.state],
        terminal_id=row.terminal_id or 0,
        total=row.total,
        done=row.done,
        failed=row.failed,
        rejected=row.rejected,
        administrator_id=row.administrator_id or 0,
        created_by=row.actor,
        create_time=timestamp(row.created_at),
        draft_expire_time=timestamp(row.draft_expires_at),
        start_time=timestamp(row.started_at),
        finish_time=timestamp(row.finished_at),
    )
    json_format.ParseDict(row.selection, message.selection)
    return message


def _selection(message: bulk_pb.BulkSelection) -> Selection:
    document: dict[str, Any] = json_format.MessageToDict(message)
    if message.segment_id:
        for beside in ("filter", "scope"):
            if message.HasField(beside):
                raise invalid(f"selection.{beside}", "leave it unset with segment_id")
        return Selection(ListScope(), None, document, message.segment_id)
    tree = (
        filter_from_proto(message.filter, "selection.filter")
        if message.HasField("filter")
        else None
    )
    return Selection(scope_from_proto(message.scope), tree, document)


def _in_contract(error: InvalidArgument) -> InvalidArgument:
    """The request's paths of what the use case names as the customer list and the
    single operation do: a selection's `filter` and `customer_ids` sit in `selection`,
    and a credit's moment is `expire_time`."""

    def path(field: str) -> str:
        if field == "filter" or field.startswith("filter."):
            return f"selection.{field}"
        if field == "customer_ids":
            return "selection.scope.customer_ids"
        return field.replace(".expires_at", ".expire_time")

    violations = tuple(
        FieldViolation(path(each.field), each.description) for each in error.violations
    )
    if violations == error.violations:
        return error
    first = violations[0]
    return InvalidArgument(
        f"{first.field}: {first.description}", reason=error.reason, violations=violations
    )


class BulkActionCalls:
    bulk_actions: BulkActions

    @administrator_call(Access.CHANGE)
    async def DryRunBulkAction(
        self, request: pb.DryRunBulkActionRequest, context: Context, caller: AdministratorContext
    ) -> pb.DryRunBulkActionResponse:
        if not request.HasField("action"):
            raise invalid("action", f"set one of {_oneof_names}")
        action = action_from_proto(request.action)
        try:
            dry_run = await self.bulk_actions.dry_run(
                caller.actor, action, _selection(request.selection), request.terminal_id
            )
        except InvalidArgument as error:
            raise _in_contract(error) from error
        return pb.DryRunBulkActionResponse(
            operation=operation_to_proto(dry_run.operation), token=dry_run.token
        )

    @administrator_call(Access.CHANGE)
    async def StartBulkAction(
        self, request: pb.StartBulkActionRequest, context: Context, caller: AdministratorContext
    ) -> pb.StartBulkActionResponse:
        row = await self.bulk_actions.start(caller.actor, request.operation_id, request.token)
        return pb.StartBulkActionResponse(operation=operation_to_proto(row))

    @administrator_call(Access.READ)
    async def GetOperation(
        self, request: pb.GetOperationRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetOperationResponse:
        row = await self.bulk_actions.get(caller.business_id, request.operation_id)
        return pb.GetOperationResponse(operation=operation_to_proto(row))

    @administrator_call(Access.READ)
    async def ListOperations(
        self, request: pb.ListOperationsRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListOperationsResponse:
        rows, token = await self.bulk_actions.page(
            caller.business_id, request.page_size, request.page_token
        )
        return pb.ListOperationsResponse(
            operations=[operation_to_proto(row) for row in rows], next_page_token=token
        )

    @administrator_call(Access.CHANGE)
    async def CancelOperation(
        self, request: pb.CancelOperationRequest, context: Context, caller: AdministratorContext
    ) -> pb.CancelOperationResponse:
        row = await self.bulk_actions.cancel(caller.actor, request.operation_id)
        return pb.CancelOperationResponse(operation=operation_to_proto(row))
