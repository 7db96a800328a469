"""The lockout service's attempt records as the admin's "Access attempts" view uses them: a
page at a time (``GET /v1/attempts``) and deleted by name (``POST /v1/attempts/delete``).

A record is named by its identity, the fields of its lockout combination that the service lists
as ``parameters`` (``ip``, ``username``, ``user_agent``). In a form, an identity travels as its
``pk``: those fields as compact JSON.
"""

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from lockout_axes import client

IDENTITY_LABELS = {"ip": "IP", "username": "username", "user_agent": "user agent"}


@dataclass(frozen=True)
class Identity:
    ip: str | None = None
    username: str | None = None
    user_agent: str | None = None

    @classmethod
    def from_pk(cls, pk):
        """The identity a form sent back; ValueError unless it is one a page could have shown."""
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
    failures: int
    locked: bool
    retry_after: timedelta | None
    first_failure: datetime | None
    last_failure: datetime | None
    user_agent: str | None
    path: str | None

    @classmethod
    def from_listing(cls, record):
        retry_after_secs = record.get("retry_after_secs")
        return cls(
            identity=Identity(**record["parameters"]),
            failures=record["failures"],
            locked=record["locked"],
            retry_after=None if retry_after_secs is None else timedelta(seconds=retry_after_secs),
            first_failure=_parse_time(record.get("first_failure")),
            last_failure=_parse_time(record.get("last_failure")),
            user_agent=record.get("user_agent"),
            path=record.get("path"),
        )


class Page(NamedTuple):
    records: list
    next_cursor: str | None


def fetch_page(*, limit, ip=None, username=None, locked_only=False, cursor=None):
    """About ``limit`` records matching the filters, from ``cursor`` (a previous next_cursor)."""
    answer = client.admin_call(
        "GET",
        "/v1/attempts",
        ip=ip,
        username=username,
        locked="true" if locked_only else None,
        limit=limit,
        cursor=cursor,
    )
    records = [AttemptRecord.from_listing(record) for record in answer["attempts"]]
    return Page(records, answer.get("next"))


def delete(identities):
    """Remove exactly the records of these identities; returns how many the service removed.

    Large selections go in several requests, each under the service's body limit.
    """
    removed = 0
    for batch in client.batches([identity.parameters for identity in identities]):
        answer = client.admin_call("POST", "/v1/attempts/delete", body={"records": batch})
        removed += answer["removed"]
    return removed


def _parse_time(text):
    """As the ORM hands a datetime to templates: aware with USE_TZ, else naive local time."""
    if text is None:
        return None
    moment = parse_datetime(text)
    return moment if settings.USE_TZ else timezone.make_naive(moment)
