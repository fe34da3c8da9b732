"""AdminService: what only admins may ask over the network, today the activity log (auth/activity.py).

Before it, the log could be read only with `effcap admin log --data-dir` on the server's machine. A caller
without the admin role gets PERMISSION_DENIED: it may know the service exists, it is in the API. Pages are
newest first and resume after the (time, id) of the previous page's last entry, so entries recorded while a
client pages on are not skipped or repeated; a token carries the filters it was issued for, and a request
that changes them is refused (AIP-158).
"""

from __future__ import annotations

import base64
import json
import math

import grpc

from effcap.capacity.json_values import load_json
from effcap.protos.v1 import admin_pb2, admin_pb2_grpc
from effcap.service.auth.activity import Activity, ActivityLog, ActivityQuery
from effcap.service.auth.principal import principal_of
from effcap.service.errors import ApiError, handle_errors, invalid_argument
from effcap.service.store import timestamp

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, activity: ActivityLog) -> None:
        self._activity = activity

    @handle_errors
    def ListActivity(self, request, context):  # noqa: N802 - gRPC method name
        principal = principal_of(context)
        if not principal.admin:
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                "ADMIN_REQUIRED",
                f"ListActivity is for admins and {principal.name} is not one: use an admin key "
                "(`effcap admin keys create NAME --admin`), or `effcap admin log --data-dir` on the server's machine",
                metadata={"principal": principal.name, "method": "ListActivity"},
            )
        if request.page_size < 0:
            raise invalid_argument("page_size", "must not be negative", "INVALID_PAGE_SIZE")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        query = _query(request)
        before = _resume_after(request.page_token, query) if request.page_token else None
        entries = self._activity.page(size + 1, query, before)  # one more says whether a next page has any
        token = _token_after(entries[size - 1], query) if len(entries) > size else ""
        return admin_pb2.ListActivityResponse(entries=[_entry(e) for e in entries[:size]], next_page_token=token)


def _query(request: admin_pb2.ListActivityRequest) -> ActivityQuery:
    start = _seconds(request, "start_time")
    end = _seconds(request, "end_time")
    if start is not None and end is not None and end <= start:
        raise invalid_argument("end_time", "must be after start_time", "INVALID_TIME_RANGE")
    return ActivityQuery(principal=request.principal or None, start=start, end=end)


def _seconds(request: admin_pb2.ListActivityRequest, field: str) -> float | None:
    if not request.HasField(field):
        return None
    stamp = getattr(request, field)
    if not 0 <= stamp.nanos < 1_000_000_000:
        raise invalid_argument(f"{field}.nanos", "must be between 0 and 999,999,999", "INVALID_TIMESTAMP")
    return stamp.seconds + stamp.nanos / 1e9


def _filters(query: ActivityQuery) -> list:
    return [query.principal, query.start, query.end]


def _token_after(entry: Activity, query: ActivityQuery) -> str:
    return base64.urlsafe_b64encode(json.dumps([entry.time, entry.id, _filters(query)]).encode()).decode()


def _resume_after(page_token: str, query: ActivityQuery) -> tuple[float, int]:
    """The (time, id) a token resumes after; INVALID_ARGUMENT for a token not ours or issued for other filters.

    Types are checked exactly as _token_after writes them: Python would take True for 1 and 1.7 for an id."""
    refused = invalid_argument("page_token", "is not a token this server issued", "INVALID_PAGE_TOKEN")
    try:
        token = load_json(base64.urlsafe_b64decode(page_token.encode()), "page_token")
    except (ValueError, TypeError):  # InputError is a ValueError, and so is bad base64 (binascii.Error)
        raise refused from None
    if not (isinstance(token, list) and len(token) == 3 and _is_filters(token[2])):
        raise refused
    seen, entry_id, filters = token
    if type(seen) is not float or not math.isfinite(seen) or type(entry_id) is not int or not 0 <= entry_id < 2**63:
        raise refused
    if filters != _filters(query):
        message = "was issued for other principal, start_time or end_time values: repeat them, or start over"
        raise invalid_argument("page_token", message, "PAGE_TOKEN_FILTER_CHANGED")
    return seen, entry_id


def _is_filters(value: object) -> bool:
    """Whether `value` has the shape _filters gives: [principal or None, start or None, end or None]."""
    if not (isinstance(value, list) and len(value) == 3):
        return False
    principal, start, end = value
    return type(principal) in (str, type(None)) and all(type(t) in (float, type(None)) for t in (start, end))


def _entry(entry: Activity) -> admin_pb2.ActivityEntry:
    return admin_pb2.ActivityEntry(
        time=timestamp(entry.time), principal=entry.principal, action=entry.action, target=entry.target
    )
