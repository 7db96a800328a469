"""Axes handler that keeps failure counts and lockouts in the lockout service.

``AXES_HANDLER = "lockout_axes.handler.LockoutHandler"``. Axes' settings stay the truth: each
call sends the policy they give for this request (failure limit, cool-off, lockout parameters,
the three switches), and the service applies it atomically in Redis. The flow follows
``axes.handlers.database.AxesDatabaseHandler``: checks only read (Axes' backend asks before the
password is checked), and every failed login, a refused one included, is counted once, by
``user_login_failed``. Allow and deny lists, ``AXES_ONLY_ADMIN_SITE`` and
``AXES_NEVER_LOCKOUT_GET`` are Axes' own ``is_allowed``, evaluated here and never sent.

An answer that is not a verdict (the service unavailable or refusing the call) leaves the login
to ``LOCKOUT_ON_ERROR``. With ``"deny"`` the login is refused as unavailable, not as locked out:
no ``user_locked_out``, and ``lockout_axes.middleware.LockoutMiddleware`` answers 503.

What lockout adds to Axes: ``LOCKOUT_POLICY``'s keys join each call's policy (the client adds
them); in observe mode a lock the service withholds (``"would_lock"``) is logged, and the login
goes on; ``LOCKOUT_DEVICE_COOKIE`` sends the browser's device token with each call and keeps the
one a success answers (``lockout_axes.devices``); ``LOCKOUT_UNLOCK_EMAIL`` mails the user of a
locked username an unlock link (``lockout_axes.unlock``).
"""

from datetime import timedelta
from logging import getLogger

from axes.conf import settings
from axes.handlers.base import AbstractAxesHandler, AxesBaseHandler
from axes.helpers import (
    get_client_str,
    get_client_username,
    get_cool_off,
    get_credentials,
    get_failure_limit,
    get_lockout_parameters,
)
from axes.signals import user_locked_out
from django.utils.module_loading import import_string

from lockout_axes import client, devices, unlock

log = getLogger(__name__)

# AXES_COOLOFF_TIME = None locks until an admin resets; the service wants every key to expire,
# so such a lock lasts the longest cool-off it accepts.
PERMANENT_COOLOFF = "365d"
PERMANENT_COOLOFF_SECONDS = 365 * 24 * 3600
# Axes' IP is None when it cannot tell the client's address; such requests share this one, as
# the database handler's rows without an IP share one NULL.
UNKNOWN_CLIENT_IP = "0.0.0.0"
# The service refuses longer usernames; no real account has one, and cutting only merges them.
MAX_USERNAME_CHARS = 255
# Set on a request that found the service unavailable, so the request does not wait for it twice.
UNAVAILABLE_FLAG = "lockout_unavailable"
# Set on a login refused because the service was unavailable and LOCKOUT_ON_ERROR is "deny".
REFUSED_UNAVAILABLE_FLAG = "lockout_refused_unavailable"
# The request's latest answer from the service, which its lockout's path reads.
ANSWER_ATTRIBUTE = "lockout_answer"


class LockoutHandler(AbstractAxesHandler, AxesBaseHandler):
    """Axes' handler API over the lockout service's HTTP API."""

    def is_locked(self, request, credentials=None):
        if not settings.AXES_LOCK_OUT_AT_FAILURE:
            return False
        answer = self._check(request, credentials)
        if answer.get("would_lock"):
            _log_observed(
                "would refuse the login of",
                request,
                get_client_username(request, credentials),
                answer,
            )
        return answer["locked"]

    def get_failures(self, request, credentials=None):
        return _highest_count(self._check(request, credentials))

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        log.info("AXES: User login failed, running lockout handler for failure.")

        if request is None:
            log.error("AXES: LockoutHandler.user_login_failed does not function without a request.")
            return

        username = get_client_username(request, credentials)
        client_str = _client_str(request, username)

        if getattr(request, UNAVAILABLE_FLAG, False) and client.locked_when_unavailable():
            _refuse_unavailable(request, credentials, client_str)
            return

        # Axes refused this attempt and must not extend the lock by counting it.
        if not settings.AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT and request.axes_locked_out:
            request.axes_credentials = credentials
            _send_user_locked_out(request, credentials, username)
            return

        if self.is_whitelisted(request, credentials):
            log.info("AXES: Login failed from whitelisted client %s.", client_str)
            return

        # The check Axes made before the password (absent without AXES_LOCK_OUT_AT_FAILURE).
        checked = getattr(request, ANSWER_ATTRIBUTE, None) or {}
        if get_lockout_parameters(request, credentials) == ["username"] and username is None:
            log.warning(
                "AXES: Username is None and username is the only one lockout parameter, "
                "new record will NOT be created."
            )
            answer = self._check(request, credentials)
        else:
            answer = _answer_or_fallback(
                request,
                "/v1/failure",
                _attempt(request, credentials, username, path=request.axes_path_info),
            )
            setattr(request, ANSWER_ATTRIBUTE, answer)
            log.warning(
                "AXES: Login failure by %s. Count = %d of %d.",
                client_str,
                _highest_count(answer),
                get_failure_limit(request, credentials),
            )

        if answer.get("unavailable") and answer["locked"]:
            _refuse_unavailable(request, credentials, client_str)
            return

        request.axes_failures_since_start = _highest_count(answer)

        if answer.get("would_lock") and not checked.get("would_lock"):
            _log_observed("would lock out", request, username, answer)

        if settings.AXES_LOCK_OUT_AT_FAILURE and answer["locked"]:
            log.warning("AXES: Locking out %s after repeated login failures.", client_str)
            request.axes_locked_out = True
            request.axes_credentials = credentials
            _send_user_locked_out(request, credentials, username)

    def user_logged_in(self, sender, request, user, **kwargs):
        username = user.get_username()
        log.info("AXES: Successful login by %s.", _client_str(request, username))
        body = _attempt(request, get_credentials(username), username, path=request.axes_path_info)
        devices.keep(request, _answer(request, "/v1/success", body))

    def user_logged_out(self, sender, request, user, **kwargs):
        username = user.get_username() if user else None
        log.info("AXES: Successful logout by %s.", _client_str(request, username))

    def reset_attempts(self, *, ip_address=None, username=None, ip_or_username=False):
        # As the database handler: an empty IP or username filters nothing.
        ip_address = ip_address or None
        username = username or None
        if ip_address is None and username is None and not ip_or_username:
            query = {"all": "true"}
        else:
            match = "any" if ip_or_username else None
            query = {"ip": ip_address, "username": username, "match": match}
        count = client.admin_call("DELETE", "/v1/attempts", **query)["removed"]
        log.info("AXES: Reset %d access attempts from lockout.", count)
        return count

    def reset_logs(self, *, age_days=None):
        return _reset_access_log(age_days)

    def reset_failure_logs(self, *, age_days=None):
        return _reset_access_log(age_days)

    def remove_out_of_limit_failure_logs(self, *, username, limit=None):
        return 0

    def post_save_access_attempt(self, instance, **kwargs):
        """Axes' signal receivers call this on every AccessAttempt save; nothing is kept there."""

    def post_delete_access_attempt(self, instance, **kwargs):
        """Axes' signal receivers call this on every AccessAttempt delete; nothing is kept there."""

    def _check(self, request, credentials):
        """The read-only verdict and counts of this attempt: the check never counts a failure."""
        username = get_client_username(request, credentials)
        body = _attempt(request, credentials, username, record_refusal=False)
        answer = _answer_or_fallback(request, "/v1/check", body)
        setattr(request, ANSWER_ATTRIBUTE, answer)
        return answer


def probe_body(request):
    """The body of a read-only login call without a username, for the system checks."""
    return _attempt(request, None, None, record_refusal=False)


def in_use():
    """Whether ``AXES_HANDLER`` names LockoutHandler (or a subclass), read at every call: with
    another handler (a site rolled back to Axes' own), lockout_axes' commands and checks step
    aside, so that Axes works as if lockout_axes were not installed."""
    try:
        handler = import_string(settings.AXES_HANDLER)
    except ImportError:
        return False
    return isinstance(handler, type) and issubclass(handler, LockoutHandler)


def _attempt(request, credentials, username, **fields):
    """The body of a login call: the attempt's identity fields, the browser's device token and
    this request's policy (Axes' settings)."""
    body = {
        "ip": request.axes_ip_address or UNKNOWN_CLIENT_IP,
        "username": _counted_username(username),
        "user_agent": request.axes_user_agent,
        "policy": _policy(request, credentials),
        **fields,
    }
    device_token = devices.token_of(request)
    if device_token:
        body["device_token"] = device_token
    return body


def _counted_username(username):
    return None if username is None else str(username)[:MAX_USERNAME_CHARS]


def _policy(request, credentials):
    return {
        "failure_limit": get_failure_limit(request, credentials),
        "cooloff": _duration(get_cool_off(request)),
        "lockout_parameters": get_lockout_parameters(request, credentials),
        "lock_out_at_failure": settings.AXES_LOCK_OUT_AT_FAILURE,
        "reset_on_success": settings.AXES_RESET_ON_SUCCESS,
        "reset_cooloff_on_failure_during_lockout": (
            settings.AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT
        ),
    }


def _duration(cool_off):
    if cool_off is None:
        return PERMANENT_COOLOFF
    return f"{cool_off // timedelta(milliseconds=1)}ms"


def _seconds(cool_off):
    if cool_off is None:
        return PERMANENT_COOLOFF_SECONDS
    return max(1, cool_off // timedelta(seconds=1))


def _answer(request, path, body):
    """The service's answer, or None when it is unavailable (then for the rest of the request)."""
    if getattr(request, UNAVAILABLE_FLAG, False):
        return None
    try:
        return client.login_call(path, body)
    except client.LockoutError:
        setattr(request, UNAVAILABLE_FLAG, True)
        return None


def _answer_or_fallback(request, path, body):
    """The service's verdict, or the one LOCKOUT_ON_ERROR gives while it is unavailable."""
    answer = _answer(request, path, body)
    if answer is None:
        return {"locked": client.locked_when_unavailable(), "failures": [], "unavailable": True}
    return answer


def _refuse_unavailable(request, credentials, client_str):
    """Refuse a login for want of a verdict: Axes' middleware is to answer, but it is no lockout."""
    log.warning(
        "AXES: Refusing the login of %s: the lockout service is unavailable "
        "(LOCKOUT_ON_ERROR denies).",
        client_str,
    )
    request.axes_locked_out = True
    request.axes_credentials = credentials
    setattr(request, REFUSED_UNAVAILABLE_FLAG, True)


def _highest_count(answer):
    return max((failure["count"] for failure in answer.get("failures", [])), default=0)


def _client_str(request, username):
    return get_client_str(
        username,
        request.axes_ip_address,
        request.axes_user_agent,
        request.axes_path_info,
        request,
    )


def _send_user_locked_out(request, credentials, username):
    user_locked_out.send(
        "axes", request=request, username=username, ip_address=request.axes_ip_address
    )
    answer = getattr(request, ANSWER_ATTRIBUTE, None)
    if unlock.enabled() and _locks_username(answer, get_failure_limit(request, credentials)):
        lock_seconds = answer.get("retry_after_secs") or _seconds(get_cool_off(request))
        unlock.offer(request, _counted_username(username), lock_seconds)


def _locks_username(answer, failure_limit):
    """Whether the answer locks the attempt's username (not only its address: an unlock link
    removes the username's locks only). A check names the locks; a failure gives the counts."""
    if not answer or not answer["locked"]:
        return False
    if "locked_by" in answer:
        return any("username" in combination for combination in answer["locked_by"])
    return any(
        "username" in failure["parameters"] and failure["count"] >= failure_limit
        for failure in answer.get("failures", [])
    )


def _log_observed(what, request, username, answer):
    """Observe mode: the lock the service withheld, in the log; the login goes on."""
    observed = answer.get("observed", {})
    log.warning(
        "AXES: Observe mode: lockout %s %s (locked by %s, for %s s); nothing is refused.",
        what,
        _client_str(request, username),
        observed.get("locked_by"),
        observed.get("retry_after_secs"),
    )


def _reset_access_log(age_days):
    """Lockout keeps one access log (failures, refusals, successes): both Axes resets clear it."""
    older_than = "0s" if age_days is None else f"{age_days}d"
    count = client.admin_call("DELETE", "/v1/logs", older_than=older_than)["removed"]
    log.info(
        "AXES: Reset %d access log entries older than %s from lockout.",
        count,
        older_than,
    )
    return count
