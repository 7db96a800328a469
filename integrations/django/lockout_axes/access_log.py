"""The lockout service's access log as the admin's "Access logs" and "Access failures" pages read
it (``GET /v1/logs``): every login the service saw (a failure, a refusal while locked out, a
success), newest first, filtered and paged by offset.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from lockout_axes import client
from lockout_axes.records import instant, parse_time

OUTCOMES = ("failure", "refused", "success")
# The service answers pages only within its newest 10,000 matching entries (offset + limit).
OFFSET_LIMIT = 10_000


@dataclass(frozen=True)
class LogEntry:
    time: datetime
    ip: str | None
    username: str | None
    user_agent: str | None
    path: str | None
    outcome: str

    @classmethod
    def from_listing(cls, entry):
        return cls(
            time=parse_time(entry["time"]),
            ip=entry.get("ip"),
            username=entry.get("username"),
            user_agent=entry.get("user_agent"),
            path=entry.get("path"),
            outcome=entry["outcome"],
        )


class Page(NamedTuple):
    entries: list
    # Whether another entry matches beyond this page.
    more: bool


def fetch_page(
    *, offset, limit, outcomes=OUTCOMES, search=None, since=None, until=None, ip=None, username=None
):
    """The entries matching the filters, newest first, from ``offset``: exactly ``limit`` of them
    unless fewer are left. ``since``/``until`` are aware datetimes; ``outcomes`` a subset of
    OUTCOMES."""
    answer = client.admin_call(
        "GET",
        "/v1/logs",
        outcome=",".join(outcomes),
        q=search or None,
        **{"from": instant(since), "to": instant(until)},
        ip=ip,
        username=username,
        offset=offset,
        limit=limit,
    )
    return Page([LogEntry.from_listing(entry) for entry in answer["logs"]], answer["more"])
