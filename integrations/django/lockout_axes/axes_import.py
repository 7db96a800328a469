"""Axes' database rows (``axes.models.AccessAttempt``) as the lockout service's attempt
records, for ``manage.py lockout_import_axes``: a site that switches from Axes' database handler
keeps its lockouts in force, for the time they have left, and its failure counts.

Axes keeps a row per (username, IP, user agent), each with its failure count and the time of
its latest failure. For a login it sums, for each lockout parameter (a combination of fields),
the rows that match the login's values and whose latest failure is within the cool-off, and the
login is locked out while one sum is at the failure limit. lockout keeps one record per identity
(a combination filled with values), so each row's lockout parameters name its identities, and
an identity's record carries what Axes would count for it:

- failures: the sum of the live rows (latest failure within the cool-off) it matches;
- first and last failure: the earliest and the latest of those rows' times (a row keeps only
  its latest failure's time), the user agent and path of the latest row;
- expires in: the cool-off from the latest failure, as the handler's failures keep it;
- locked for: when the sum is at the limit (and ``AXES_LOCK_OUT_AT_FAILURE``), until Axes' sum
  would drop below it: rows leave the sum as their cool-off runs out, newest last, so the lock
  ends when the newest rows that still reach the limit on their own run out.

Identity fields follow the handler: a row without an IP counts as ``0.0.0.0``, a None or empty
username or user agent forms no identity. ``AXES_LOCKOUT_PARAMETERS``, ``AXES_FAILURE_LIMIT``
and ``AXES_COOLOFF_TIME`` may be callables: they are asked with the request of the row's latest
failure, rebuilt from the row (its IP, user agent, path and username); one that cannot answer
for it stops the import, naming the setting and the row. ``AXES_COOLOFF_TIME = None`` keeps
rows forever: such records and locks get the longest the service keeps, 365 days from now.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from axes.conf import settings
from axes.helpers import get_cool_off, get_credentials, get_failure_limit, get_lockout_parameters
from axes.models import AccessAttempt
from django.http import HttpRequest
from django.utils import timezone

from lockout_axes import client
from lockout_axes.handler import MAX_USERNAME_CHARS, UNKNOWN_CLIENT_IP

# Axes' lockout parameter names, and the service's field names for them, in the service's order.
FIELDS = {"ip_address": "ip", "username": "username", "user_agent": "user_agent"}
# What the service keeps at most (AXES_COOLOFF_TIME = None keeps Axes' rows forever).
LONGEST = timedelta(days=365)


class ImportRefused(Exception):
    """Axes' settings or rows cannot be imported as they are; the message says why."""


@dataclass(frozen=True)
class ImportRecord:
    """One identity's record, as ``POST /v1/attempts/import`` takes it."""

    parameters: dict
    failures: int
    first_failure: datetime
    last_failure: datetime
    user_agent: str | None
    path: str | None
    expires_in: timedelta
    locked_for: timedelta | None

    def as_json(self):
        return {
            "parameters": self.parameters,
            "failures": self.failures,
            "first_failure": _rfc3339(self.first_failure),
            "last_failure": _rfc3339(self.last_failure),
            "user_agent": self.user_agent or None,
            "path": self.path or None,
            "expires_in_secs": _whole_seconds(self.expires_in),
            "locked_for_secs": None if self.locked_for is None else _whole_seconds(self.locked_for),
        }


@dataclass(frozen=True)
class Outcome:
    rows: int
    records: int
    locked: int


@dataclass(frozen=True)
class _Row:
    """What the import reads of an AccessAttempt, with its time made aware."""

    ip: str
    username: str | None
    user_agent: str
    path: str
    failures: int
    time: datetime


def import_rows(*, dry_run=False, now=None):
    """Imports Axes' AccessAttempt rows (``dry_run``: only has the service check them); returns
    how many rows counted (within their cool-off), records were sent and of those locked."""
    now = now or datetime.now(dt_timezone.utc)
    records, counted = records_from_rows(list(_recent_rows(now)), now)
    sent = locked = 0
    for batch in client.batches([record.as_json() for record in records]):
        body = {"records": batch, "dry_run": dry_run}
        try:
            answer = client.admin_call("POST", "/v1/attempts/import", body=body)
        except client.ServiceUnavailable as error:
            raise ImportRefused(
                f"the lockout service is unavailable ({error}); {_stopped(sent, records, dry_run)}"
            ) from None
        except client.RequestRejected as error:
            raise ImportRefused(f"{error}; {_stopped(sent, records, dry_run)}") from None
        sent += len(batch)
        locked += answer["locked"]
    return Outcome(rows=counted, records=len(records), locked=locked)


def _stopped(sent, records, dry_run):
    if dry_run or not sent:
        return "nothing was imported"
    return (
        f"{sent} of {len(records)} records were imported before it stopped; running the "
        "command again imports the rest and counts nothing twice"
    )


def records_from_rows(rows, now):
    """Each identity the rows' lockout parameters name, with what Axes counts for it ``now``,
    and how many of the rows counted for any."""
    named = set()
    for row in rows:
        named.update(
            identity
            for identity in (_identity(row, combination) for combination in _combinations(row))
            if identity is not None
        )
    # An identity counts every row that matches it, whatever that row's own parameters were.
    matching = {}
    for combination in {combination for combination, _ in named}:
        for row in rows:
            identity = _identity(row, combination)
            if identity in named:
                matching.setdefault(identity, []).append(row)
    records, counted = [], set()
    for identity in sorted(named):
        record, live = _record(identity, matching[identity], now)
        counted.update(id(row) for row in live)
        if record is not None:
            records.append(record)
    return records, len(counted)


def _recent_rows(now):
    """Axes' rows, less those past the cool-off when it is one duration."""
    attempts = AccessAttempt.objects.all()
    cool_off = settings.AXES_COOLOFF_TIME
    if cool_off is not None and not callable(cool_off) and not isinstance(cool_off, str):
        attempts = attempts.filter(attempt_time__gte=_naive_if_needed(now - get_cool_off()))
    fields = ("ip_address", "username", "user_agent", "path_info", "failures_since_start")
    for values in attempts.values_list(*fields, "attempt_time").iterator():
        ip, username, user_agent, path, failures, time = values
        yield _Row(
            ip=ip or UNKNOWN_CLIENT_IP,
            username=None if username is None else username[:MAX_USERNAME_CHARS],
            user_agent=user_agent,
            path=path,
            failures=failures,
            time=_aware(time),
        )


def _combinations(row):
    """The row's lockout parameters as the service's field tuples, each in the service's order."""
    parameters = _ask("AXES_LOCKOUT_PARAMETERS", row, get_lockout_parameters)
    if not isinstance(parameters, (list, tuple)):
        raise ImportRefused(f"AXES_LOCKOUT_PARAMETERS gave {parameters!r:.100}, not a list")
    combinations = []
    for parameter in parameters:
        names = [parameter] if isinstance(parameter, str) else list(parameter)
        unknown = [name for name in names if name not in FIELDS]
        if unknown or not names:
            raise ImportRefused(
                f"AXES_LOCKOUT_PARAMETERS names {parameter!r}: lockout parameters are "
                f"combinations of {', '.join(FIELDS)}"
            )
        combinations.append(tuple(FIELDS[name] for name in FIELDS if name in names))
    return combinations


def _identity(row, combination):
    """(combination, values) of the row, or None when a field is absent (as the handler forms
    no identity for a None or empty username or user agent)."""
    values = []
    for field in combination:
        value = {"ip": row.ip, "username": row.username, "user_agent": row.user_agent}[field]
        if not value:
            return None
        values.append(value)
    return combination, tuple(values)


def _record(identity, rows, now):
    """The identity's record (None when every row is past the cool-off), and its live rows."""
    latest = max(rows, key=lambda row: row.time)
    cool_off = _ask("AXES_COOLOFF_TIME", latest, lambda request, _: get_cool_off(request))
    newest_first = sorted(
        (row for row in rows if _end(row, cool_off, now) > now),
        key=lambda row: row.time,
        reverse=True,
    )
    if not newest_first:
        return None, newest_first
    failures = sum(row.failures for row in newest_first)
    limit = _ask("AXES_FAILURE_LIMIT", latest, get_failure_limit)
    locked_for = None
    if settings.AXES_LOCK_OUT_AT_FAILURE and failures >= limit:
        reached = 0
        for row in newest_first:
            reached += row.failures
            if reached >= limit:
                locked_for = _end(row, cool_off, now) - now
                break
    combination, values = identity
    record = ImportRecord(
        parameters=dict(zip(combination, values, strict=True)),
        failures=failures,
        first_failure=newest_first[-1].time,
        last_failure=latest.time,
        user_agent=latest.user_agent,
        path=latest.path,
        expires_in=_end(latest, cool_off, now) - now,
        locked_for=locked_for,
    )
    return record, newest_first


def _end(row, cool_off, now):
    """When the row leaves Axes' sums (never, without a cool-off), at the latest when the
    service would forget it."""
    longest = now + LONGEST
    return longest if cool_off is None else min(row.time + cool_off, longest)


def _ask(setting, row, evaluate):
    """An Axes setting's value for the row's latest failure (a callable is asked with its
    request, rebuilt from the row); ImportRefused when it cannot answer for it."""
    credentials = get_credentials(row.username)
    try:
        return evaluate(_request(row), credentials)
    except Exception as error:
        raise ImportRefused(
            f"{setting} could not be evaluated for the access attempt of username "
            f"{row.username!r}, IP {row.ip} ({type(error).__name__}: {error}); the import asks "
            "it with a request rebuilt from the row: its IP, user agent, path and username"
        ) from None


def _request(row):
    """The request of the row's latest failure, as far as the row tells it."""
    request = HttpRequest()
    request.method = "POST"
    request.path = request.path_info = row.path
    request.META.update(REMOTE_ADDR=row.ip, HTTP_USER_AGENT=row.user_agent, PATH_INFO=row.path)
    request.axes_ip_address = row.ip
    request.axes_user_agent = row.user_agent
    request.axes_path_info = row.path
    request.axes_attempt_time = _naive_if_needed(row.time)
    request.axes_locked_out = False
    request.axes_credentials = get_credentials(row.username)
    return request


def _aware(moment):
    """As stored: aware with USE_TZ, else naive in the current time zone."""
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _naive_if_needed(moment):
    return moment if settings.USE_TZ else timezone.make_naive(moment)


def _rfc3339(moment):
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_seconds(duration):
    """At least 1, rounded up: an imported lock never ends before Axes' would."""
    return max(1, math.ceil(duration / timedelta(seconds=1)))
