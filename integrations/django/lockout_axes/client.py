"""HTTP client for the lockout service's API, as the Axes handler and commands use it.

Settings are read from ``django.conf.settings`` at every call (so ``override_settings`` works):
``LOCKOUT_URL``, ``LOCKOUT_API_TOKEN``, ``LOCKOUT_ADMIN_TOKEN``, ``LOCKOUT_TIMEOUT``,
``LOCKOUT_ON_ERROR`` and ``LOCKOUT_SCOPE``. Calls go over a kept-alive connection per thread
(``lockout_axes.transport``); a call's connecting and reading share one ``LOCKOUT_TIMEOUT``, and no
call is retried.

A service that cannot be reached, times out, fails (5xx) or answers ``"degraded": true`` raises
``ServiceUnavailable``, unless the degraded answer says ``"store": "local"``: a service with
``on_store_error = "local"`` counted it on its own while its Redis is away, and its verdict
stands. The log gets one warning when an outage starts and one info line when the service answers
again. A 4xx raises ``RequestRejected``: the request was wrong, a bug or a misconfiguration, never
a verdict. Tokens appear in no log line and no exception message, and Django's error reports hide
the frame variables that hold them.
"""

import json
import logging
import os
import threading
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

from lockout_axes import transport

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 0.5
ON_ERROR_CHOICES = ("deny", "allow")
ERROR_TEXT_LIMIT = 300


class LockoutError(Exception):
    """A call to the lockout service got no usable answer."""


class ServiceUnavailable(LockoutError):
    """The service could not be reached, timed out, failed (5xx) or is degraded."""


class RequestRejected(LockoutError):
    """The service refused the request (4xx): a bug or a misconfiguration."""


def login_call(path, body):
    """POST a login call (``/v1/check``, ``/v1/failure``, ``/v1/success``) and return its answer."""
    scoped_body = {**body, **_scope()}
    return _call("POST", path, body=scoped_body, token=_setting("LOCKOUT_API_TOKEN"))


@sensitive_variables("token")
def admin_call(method, path, body=None, **query):
    """Call an admin endpoint with ``LOCKOUT_ADMIN_TOKEN``, with a JSON ``body`` or a query
    string; ``LOCKOUT_SCOPE`` goes into whichever is sent, and ``None`` query values are left out.
    """
    token = _setting("LOCKOUT_ADMIN_TOKEN")
    if not token:
        raise ImproperlyConfigured(
            "LOCKOUT_ADMIN_TOKEN must be set to list or reset the lockout service's records"
        )
    if body is not None:
        return _call(method, path, body={**body, **_scope()}, token=token)
    present = {name: value for name, value in query.items() if value is not None}
    return _call(method, path, query={**present, **_scope()}, token=token)


def iter_attempts(page_size=1000):
    """Every attempt record of ``LOCKOUT_SCOPE``, a page at a time."""
    cursor = None
    while True:
        page = admin_call("GET", "/v1/attempts", limit=page_size, cursor=cursor)
        yield from page["attempts"]
        cursor = page.get("next")
        if cursor is None:
            return


def locked_when_unavailable():
    """The verdict ``LOCKOUT_ON_ERROR`` gives a login while the service is unavailable."""
    on_error = _setting("LOCKOUT_ON_ERROR", "deny")
    if on_error not in ON_ERROR_CHOICES:
        raise ImproperlyConfigured(
            f"LOCKOUT_ON_ERROR must be one of {ON_ERROR_CHOICES}, not {on_error!r}"
        )
    return on_error == "deny"


def timeout_seconds():
    """LOCKOUT_TIMEOUT: the longest a call may wait, in seconds."""
    seconds = _setting("LOCKOUT_TIMEOUT", DEFAULT_TIMEOUT)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ImproperlyConfigured(
            f"LOCKOUT_TIMEOUT must be a positive number of seconds, not {seconds!r}"
        )
    return seconds


def _setting(name, default=None):
    return getattr(settings, name, default)


def _scope():
    scope = _setting("LOCKOUT_SCOPE")
    return {"scope": scope} if scope else {}


@sensitive_variables("token")
def _call(method, path, *, token, body=None, query=None):
    base_url = _setting("LOCKOUT_URL", DEFAULT_URL).rstrip("/")
    try:
        status, payload = _exchange(method, base_url, path, token, body, query)
    except ServiceUnavailable as error:
        _state.outage_started(base_url, str(error))
        raise
    _state.outage_ended(base_url)
    if status >= 400:
        raise RequestRejected(
            f"lockout service refused {method} {path}: HTTP {status}: {_error_text(payload)}"
        )
    return payload


@sensitive_variables("token", "headers")
def _exchange(method, base_url, path, token, body, query):
    """One request: (status, body) of a 2xx JSON object or of a 4xx, else ServiceUnavailable."""
    target = path + (f"?{urlencode(query)}" if query else "")
    headers = "Accept: application/json\r\n"
    if token:
        headers += f"Authorization: Bearer {token}\r\n"
    encoded_body = None
    if body is not None:
        headers += "Content-Type: application/json\r\n"
        encoded_body = json.dumps(body).encode()
    try:
        status, data = transport.request(
            method, base_url, target, headers, encoded_body, timeout_seconds()
        )
    except transport.Unreachable as error:
        raise ServiceUnavailable(str(error)) from None
    try:
        payload = json.loads(data)
    except ValueError:
        payload = data.decode(errors="replace")
    if status >= 500:
        raise ServiceUnavailable(f"HTTP {status}: {_error_text(payload)}")
    if status >= 400:
        return status, payload
    if not isinstance(payload, dict):
        raise ServiceUnavailable(f"HTTP {status} without a JSON object: {payload!r:.100}")
    if payload.get("degraded") and payload.get("store") != "local":
        raise ServiceUnavailable("the service is degraded: its Redis is unavailable")
    return status, payload


def _error_text(payload):
    text = payload.get("error", payload) if isinstance(payload, dict) else payload
    return str(text)[:ERROR_TEXT_LIMIT]


def _without_credentials(url):
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


class _ProcessState:
    """What one process shares between its threads: the outage flag."""

    def __init__(self):
        self._lock = threading.Lock()
        self._in_outage = False

    def outage_started(self, url, cause):
        with self._lock:
            first = not self._in_outage
            self._in_outage = True
        if first:
            log.warning(
                "lockout service at %s unavailable (%s): LOCKOUT_ON_ERROR decides logins "
                "until it answers again",
                _without_credentials(url),
                cause,
            )

    def outage_ended(self, url):
        if not self._in_outage:
            return
        with self._lock:
            ended = self._in_outage
            self._in_outage = False
        if ended:
            log.info("lockout service at %s answers again", _without_credentials(url))


_state = _ProcessState()


def _forget_parent_state():
    # A forked child must not share a lock another thread held.
    global _state
    _state = _ProcessState()


os.register_at_fork(after_in_child=_forget_parent_state)
