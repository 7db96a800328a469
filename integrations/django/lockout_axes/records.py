"""The lockout service's attempt records as the admin uses them: a sorted, searched page of them
(a view of ``GET /v1/attempts``), one record (``GET /v1/attempts/record``) with its events
(``GET /v1/events?subject=``), and deletion by name (``POST /v1/attempts/delete``).

A record is named by its identity, the fields of its lockout combination that the service lists
as ``parameters`` (``ip``, ``username``, ``user_agent``; ``device`` for a device token's own
record). In a form or a URL, an identity travels
as its ``pk``: those fields as compact JSON.
"""

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from lockout_axes import client

IDENTITY_LABELS = {
    "ip": "IP",
    "username": "username",
    "user_agent": "user agent",
    "device": "device",
}
# The orders a view takes (docs/api.md, "Views of the records"); the first is the default.
ORDERS = ("-last_failure", "last_failure", "-failures", "failures")
# A record's events read for its page: its latest ones, and the service's own bound per request.
EVENTS_SHOWN = 50
EVENTS_PAGE = 1000


@dataclass(frozen=True)
class Identity:
    ip: str | None = None
    username: str | None = None
    user_agent: str | None = None
    device: str | None = None

    @classmethod
    def from_pk(cls, pk):
        """The identity a form or URL sent back; ValueError unless a page could have shown it."""
        try:
            parameters = json.loads(pk)
        except ValueError:
            parameters = None
        if (
            not isinstance(parameters, dict)
            or not parameters
            or not set(parameters) <= set(IDENTITY_LABELS)
            or not all(isinstance(value, str) for value in parameters.values())
        ):
            raise ValueError(f"not an attempt record: {pk!r:.100}")
        return cls(**parameters)

    @property
    def parameters(self):
        return {name: value for name, value in asdict(self).items() if value is not None}

    @property
    def pk(self):
        return json.dumps(self.parameters, sort_keys=True, separators=(",", ":"))

    def __str__(self):
        return ", ".join(
            f"{IDENTITY_LABELS[name]} {value}" for name, value in self.parameters.items()
        )


@dataclass(frozen=True)
class AttemptRecord:
    identity: Identity
    # The service's name of the identity (``ip=...&username=...``): the subject of its events.
    key: str | None
    failures: int
    locked: bool
    retry_after: timedelta | None
    # Observe mode's would-be lock, which refuses nothing: how long it has left.
    would_lock_for: timedelta | None
    # An IP's lock for password spraying (too many usernames): how long it has left.
    spraying_for: timedelta | None
    first_failure: datetime | None
    last_failure: datetime | None
    user_agent: str | None
    path: str | None
    lockouts: int

    @classmethod
    def from_listing(cls, record):
        return cls(
            identity=Identity(**record["parameters"]),
            key=record.get("identity"),
            failures=record["failures"],
            locked=record["locked"],
            retry_after=_seconds(record.get("retry_after_secs")),
            would_lock_for=_seconds(record.get("would_lock_secs")),
            spraying_for=_seconds((record.get("spraying") or {}).get("retry_after_secs")),
            first_failure=parse_time(record.get("first_failure")),
            last_failure=parse_time(record.get("last_failure")),
            user_agent=record.get("user_agent"),
            path=record.get("path"),
            lockouts=record.get("lockouts", 0),
        )

    @property
    def pk(self):
        return self.identity.pk

    def __str__(self):
        return str(self.identity)


@dataclass(frozen=True)
class Event:
    time: datetime
    kind: str
    by: str | None
    lockout: timedelta | None
    removed: int | None

    @classmethod
    def from_listing(cls, event):
        lockout_secs = event.get("lockout_secs")
        return cls(
            time=parse_time(event["time"]),
            kind=event["kind"],
            by=event.get("by"),
            lockout=None if lockout_secs is None else timedelta(seconds=lockout_secs),
            removed=event.get("removed"),
        )


class Page(NamedTuple):
    records: list
    # How many records matched; with complete False, among the ``scanned`` ones read.
    total: int
    complete: bool
    scanned: int


def fetch_page(
    *,
    offset,
    limit,
    order=ORDERS[0],
    search=None,
    since=None,
    until=None,
    locked=None,
    ip=None,
    username=None,
):
    """The records matching the filters, sorted by ``order``, from ``offset``: exactly ``limit``
    of them unless fewer are left. ``since``/``until`` bound the latest failure (aware
    datetimes); ``locked`` True or False keeps locked or unlocked records only."""
    answer = client.admin_call(
        "GET",
        "/v1/attempts",
        order=order,
        q=search or None,
        last_failure_from=instant(since),
        last_failure_to=instant(until),
        locked=None if locked is None else str(locked).lower(),
        ip=ip,
        username=username,
        offset=offset,
        limit=limit,
    )
    records = [AttemptRecord.from_listing(record) for record in answer["attempts"]]
    return Page(records, answer["total"], answer["complete"], answer["scanned"])


def fetch_record(identity):
    """The record of exactly this identity, or None when it does not exist (expired, reset)."""
    try:
        answer = client.admin_call("GET", "/v1/attempts/record", **identity.parameters)
    except client.RequestRejected as error:
        if error.status == 404:
            return None
        raise
    return AttemptRecord.from_listing(answer["attempt"])


def fetch_events(record):
    """The record's latest events (at most EVENTS_SHOWN), newest first."""
    if record.key is None:
        return []
    events, since = [], None
    while True:
        answer = client.admin_call(
            "GET", "/v1/events", subject=record.key, since=since, limit=EVENTS_PAGE
        )
        events = (events + answer["events"])[-EVENTS_SHOWN:]
        since = answer.get("next")
        if since is None:
            return [Event.from_listing(event) for event in reversed(events)]


def delete(identities):
    """Remove exactly the records of these identities; returns how many the service removed.

    Large selections go in several requests, each under the service's body limit.
    """
    removed = 0
    for batch in client.batches([identity.parameters for identity in identities]):
        answer = client.admin_call("POST", "/v1/attempts/delete", body={"records": batch})
        removed += answer["removed"]
    return removed


def parse_time(text):
    """As the ORM hands a datetime to templates: aware with USE_TZ, else naive local time."""
    if text is None:
        return None
    moment = parse_datetime(text)
    return moment if settings.USE_TZ else timezone.make_naive(moment)


def instant(moment):
    """An aware datetime as the service's RFC 3339 instant, in UTC."""
    if moment is None:
        return None
    return moment.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z")


def _seconds(seconds):
    return None if seconds is None else timedelta(seconds=seconds)
