"""HTTP client for the lockout service's API, as the Axes handler, its commands and checks use it.

Settings are read from ``django.conf.settings`` at every call (so ``override_settings`` works):
``LOCKOUT_URL``, ``LOCKOUT_API_TOKEN``, ``LOCKOUT_ADMIN_TOKEN``, ``LOCKOUT_TIMEOUT``,
``LOCKOUT_ON_ERROR``, ``LOCKOUT_SCOPE`` and ``LOCKOUT_POLICY`` (merged into every login call's
policy). Calls go over a kept-alive connection per thread
(``lockout_axes.transport``); a call's connecting and reading share one ``LOCKOUT_TIMEOUT`` (a
total timeout), and no call is retried.

Every call either returns the service's answer or raises a ``LockoutError`` whose message says
what went wrong and what fixes it: ``ServiceUnavailable`` (unreachable, timed out, a 5xx, an
answer that is not the service's, or ``"degraded": true``, unless the degraded answer says
``"store": "local"``: a service with ``on_store_error = "local"`` counted it on its own while its
Redis is away, and its verdict stands), ``RequestRejected`` (a 4xx: a wrong token, a wrong
LOCKOUT_URL path, a scope or policy the service refuses) or ``MissingSetting``. For a login call
any of them means "no verdict": the handler lets LOCKOUT_ON_ERROR decide, and the log gets one
warning per cause (not per request) and one info line when the service answers again. Tokens
appear in no log line and no exception message, and Django's error reports hide the frame
variables that hold them.
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
# The service takes bodies of at most 16 KiB; what is left is room for the envelope and scope.
BATCH_BYTES = 15 * 1024


class LockoutError(Exception):
    """A call to the lockout service got no usable answer; the message says what fixes it.

    ``cause`` names the kind of failure, the same for every request it hits: the log tells
    each cause once."""

    def __init__(self, message, cause=None):
        super().__init__(message)
        self.cause = cause or message


class ServiceUnavailable(LockoutError):
    """The service could not be reached, timed out, failed (5xx), is degraded, or the answer
    was not the service's."""


class RequestRejected(LockoutError):
    """The service refused the request (4xx): a misconfiguration (token, URL, scope, policy), or
    (404) a record asked for by name that no longer exists."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class MissingSetting(LockoutError, ImproperlyConfigured):
    """A setting the call needs is not set."""


class InvalidSetting(LockoutError, ImproperlyConfigured):
    """A LOCKOUT_* setting has a value it cannot have (the system checks name it at start-up)."""


# The service's request policy keys that Axes has a setting for: Axes' setting stays the truth.
AXES_POLICY_SETTINGS = {
    "failure_limit": "AXES_FAILURE_LIMIT",
    "cooloff": "AXES_COOLOFF_TIME",
    "lockout_parameters": "AXES_LOCKOUT_PARAMETERS",
    "lock_out_at_failure": "AXES_LOCK_OUT_AT_FAILURE",
    "reset_on_success": "AXES_RESET_ON_SUCCESS",
    "reset_cooloff_on_failure_during_lockout": "AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT",
    "deny": "AXES_IP_BLACKLIST",
    "never_lockout": "AXES_NEVER_LOCKOUT_WHITELIST",
}
# The service's request policy keys Axes has nothing for: what LOCKOUT_POLICY may hold.
LOCKOUT_POLICY_KEYS = (
    "lockout_duration",
    "observe",
    "spraying_limit",
    "spraying_window",
    "access_log_retention",
    "access_log_max_entries",
)

# The service's configuration key that each token setting must match.
SERVICE_TOKEN_KEYS = {"LOCKOUT_API_TOKEN": "api_token", "LOCKOUT_ADMIN_TOKEN": "admin.token"}


def login_call(path, body):
    """POST a login call (``/v1/check``, ``/v1/failure``, ``/v1/success``) and return its answer.

    Raises a LockoutError for anything that is not a verdict, logged once per cause."""
    base_url = _base_url()
    try:
        answer = probe_call(path, body)
    except LockoutError as error:
        _state.login_failed(base_url, error)
        raise
    _state.login_answered(base_url)
    return answer


def probe_call(path, body, timeout=None):
    """A login call that logs nothing, for the system checks (``timeout`` replaces
    LOCKOUT_TIMEOUT). LOCKOUT_POLICY's keys join the body's policy (Axes' settings)."""
    site_body = {**body, **_scope()}
    site_policy = lockout_policy()
    if site_policy:
        site_body["policy"] = {**body.get("policy", {}), **site_policy}
    return _call("POST", path, body=site_body, token_setting="LOCKOUT_API_TOKEN", timeout=timeout)


def unlock_call(token):
    """``POST /v1/unlock`` with a token from an unlock email: ``{"username","removed"}``. The
    token names its scope: the body has none."""
    return _call("POST", "/v1/unlock", body={"token": token}, token_setting="LOCKOUT_API_TOKEN")


def admin_call(method, path, body=None, *, timeout=None, **query):
    """Call an admin endpoint with ``LOCKOUT_ADMIN_TOKEN``, with a JSON ``body`` or a query
    string; ``LOCKOUT_SCOPE`` goes into whichever is sent, and ``None`` query values are left out.
    ``timeout`` replaces LOCKOUT_TIMEOUT.
    """
    if not _setting("LOCKOUT_ADMIN_TOKEN"):
        raise MissingSetting(
            "LOCKOUT_ADMIN_TOKEN is not set: set it to the lockout service's admin.token to list "
            "or reset its records"
        )
    token_setting = "LOCKOUT_ADMIN_TOKEN"
    if body is not None:
        scoped_body = {**body, **_scope()}
        return _call(method, path, body=scoped_body, token_setting=token_setting, timeout=timeout)
    present = {name: value for name, value in query.items() if value is not None}
    scoped_query = {**present, **_scope()}
    return _call(method, path, query=scoped_query, token_setting=token_setting, timeout=timeout)


def iter_attempts(page_size=1000):
    """Every attempt record of ``LOCKOUT_SCOPE``, a page at a time."""
    cursor = None
    while True:
        page = admin_call("GET", "/v1/attempts", limit=page_size, cursor=cursor)
        yield from page["attempts"]
        cursor = page.get("next")
        if cursor is None:
            return


def batches(items):
    """``items`` (JSON values) in lists small enough for one request body each."""
    batch, size = [], 0
    for item in items:
        encoded_size = len(json.dumps(item)) + 1
        if batch and size + encoded_size > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += encoded_size
    if batch:
        yield batch


def locked_when_unavailable():
    """The verdict ``LOCKOUT_ON_ERROR`` gives a login while the service is unavailable; an invalid
    value denies (the safe side), and the log says so once."""
    try:
        return on_error() == "deny"
    except InvalidSetting as error:
        _state.warn_once(
            error.cause, "%s: logins are denied while the service gives no verdict", error
        )
        return True


def on_error():
    """LOCKOUT_ON_ERROR, checked."""
    value = _setting("LOCKOUT_ON_ERROR", "deny")
    if value not in ON_ERROR_CHOICES:
        raise InvalidSetting(f"LOCKOUT_ON_ERROR must be one of {ON_ERROR_CHOICES}, not {value!r}")
    return value


def timeout_seconds():
    """LOCKOUT_TIMEOUT: the longest a call may wait, in seconds."""
    seconds = _setting("LOCKOUT_TIMEOUT", DEFAULT_TIMEOUT)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise InvalidSetting(
            f"LOCKOUT_TIMEOUT must be a positive number of seconds, not {seconds!r}"
        )
    return seconds


def lockout_policy():
    """LOCKOUT_POLICY (a dict, by default empty), checked: the policy keys lockout has and Axes
    does not. Their values are the service's to check (a login call's 400 names the key)."""
    problems = lockout_policy_problems()
    if problems:
        _, message, fix = problems[0]
        raise InvalidSetting(f"{message}; {fix}")
    return _setting("LOCKOUT_POLICY") or {}


def lockout_policy_problems():
    """What is wrong with LOCKOUT_POLICY: ``(kind, message, fix)`` each, ``kind`` being
    ``"axes"`` for a key an Axes setting gives, ``"invalid"`` for anything else."""
    policy = _setting("LOCKOUT_POLICY") or {}
    if not isinstance(policy, dict):
        return [
            (
                "invalid",
                f"LOCKOUT_POLICY must be a dict, not {type(policy).__name__}",
                'write it as a dict of the service\'s policy keys, such as {"observe": True}',
            )
        ]
    problems = []
    for key in policy:
        if key in AXES_POLICY_SETTINGS:
            axes_setting = AXES_POLICY_SETTINGS[key]
            problems.append(
                (
                    "axes",
                    f"LOCKOUT_POLICY has {key!r}, which Axes' {axes_setting} gives: Axes' "
                    "settings stay the truth",
                    f"remove {key!r} from LOCKOUT_POLICY and set {axes_setting} instead",
                )
            )
        elif key not in LOCKOUT_POLICY_KEYS:
            problems.append(
                (
                    "invalid",
                    f"LOCKOUT_POLICY has {key!r}, not a policy key a site sends",
                    f"LOCKOUT_POLICY takes {', '.join(LOCKOUT_POLICY_KEYS)}; the service's other "
                    "[policy] keys are its operator's, in its configuration",
                )
            )
    return problems


def _setting(name, default=None):
    return getattr(settings, name, default)


def _base_url():
    return _setting("LOCKOUT_URL", DEFAULT_URL).rstrip("/")


def _scope():
    scope = _setting("LOCKOUT_SCOPE")
    return {"scope": scope} if scope else {}


def _call(method, path, *, token_setting, body=None, query=None, timeout=None):
    base_url = _base_url()
    target = path + (f"?{urlencode(query)}" if query else "")
    encoded_body = None if body is None else json.dumps(body).encode()
    seconds = timeout or timeout_seconds()
    token = _setting(token_setting)
    status, data = _exchange(method, base_url, target, token, encoded_body, seconds)
    return _answer_of(status, data, f"{method} {path}", base_url, token_setting)


@sensitive_variables("token", "headers")
def _exchange(method, base_url, target, token, body, timeout):
    """One request: (status, body bytes), or ServiceUnavailable when no answer came."""
    headers = "Accept: application/json\r\n"
    if token:
        headers += f"Authorization: Bearer {token}\r\n"
    if body is not None:
        headers += "Content-Type: application/json\r\n"
    try:
        return transport.request(method, base_url, target, headers, body, timeout)
    except transport.Unreachable as error:
        raise ServiceUnavailable(str(error)) from None


def _answer_of(status, data, request, base_url, token_setting):
    """The JSON object a 2xx carries, or the LockoutError that says what went wrong and the fix."""
    try:
        payload = json.loads(data)
    except ValueError:
        payload = data.decode(errors="replace")
    if status >= 500:
        raise ServiceUnavailable(f"HTTP {status}: {_error_text(payload)}", f"HTTP {status}")
    if status >= 400:
        raise RequestRejected(
            f"the lockout service refused {request}: HTTP {status}: "
            f"{_error_text(payload)}; {_fix(status, base_url, token_setting)}",
            status,
        )
    if not isinstance(payload, dict):
        raise ServiceUnavailable(
            f"HTTP {status} without a JSON object ({payload!r:.60}): is LOCKOUT_URL the lockout "
            "service's address?"
        )
    if payload.get("degraded") and payload.get("store") != "local":
        raise ServiceUnavailable("the service is degraded: its Redis is unavailable")
    return payload


def _fix(status, base_url, token_setting):
    """What fixes the setting behind a 4xx."""
    if status == 403 and token_setting == "LOCKOUT_API_TOKEN":
        return (
            "the service binds this LOCKOUT_API_TOKEN to other scopes (its api_tokens): set "
            "LOCKOUT_API_TOKEN to the token of LOCKOUT_SCOPE's, or LOCKOUT_SCOPE to one it names"
        )
    if status in (401, 403):
        service_key = SERVICE_TOKEN_KEYS[token_setting]
        if not _setting(token_setting):
            return f"{token_setting} is not set: set it to the service's {service_key}"
        return f"set {token_setting} to the service's {service_key}"
    if status in (404, 405):
        return (
            f"LOCKOUT_URL ({_without_credentials(base_url)}) must be the service's base URL, "
            "scheme, host and port only, such as http://lockout:8080"
        )
    if status == 429:
        return (
            f"the service locked this address out after wrong admin credentials: correct "
            f"{token_setting}, then wait for the lock to end or run "
            "`lockout --scope _admin reset --ip ADDRESS` on the service"
        )
    return "check LOCKOUT_SCOPE and the AXES_* settings the error names"


def _error_text(payload):
    """The service's error, on one line (a proxy's error page is HTML over many)."""
    text = payload.get("error", payload) if isinstance(payload, dict) else payload
    return " ".join(str(text).split())[:ERROR_TEXT_LIMIT]


def _without_credentials(url):
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


class _ProcessState:
    """What one process shares between its threads: the causes the log has told since the login
    calls last got a verdict (the connections are the transport's)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._causes = set()

    def login_failed(self, url, error):
        self.warn_once(
            error.cause,
            "lockout service at %s gives logins no verdict: %s. LOCKOUT_ON_ERROR decides them "
            "until it answers again",
            _without_credentials(url),
            error,
        )

    def warn_once(self, cause, message, *args):
        """Log the warning unless ``cause`` was told since the login calls last got a verdict."""
        with self._lock:
            new = cause not in self._causes
            self._causes.add(cause)
        if new:
            log.warning(message, *args)

    def login_answered(self, url):
        if not self._causes:
            return
        with self._lock:
            ended = bool(self._causes)
            self._causes = set()
        if ended:
            log.info("lockout service at %s answers again", _without_credentials(url))


_state = _ProcessState()


def _forget_parent_state():
    # A forked child must not share a lock another thread held.
    global _state
    _state = _ProcessState()


os.register_at_fork(after_in_child=_forget_parent_state)
