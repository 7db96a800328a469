"""System checks (tag ``lockout``; a plain ``manage.py check`` runs them): the settings, the
middleware, and what the service itself says of them, so that a misconfiguration shows at
start-up with its fix instead of in the first login.

The settings: LOCKOUT_ON_ERROR (E001), LOCKOUT_TIMEOUT (E002), the middleware (E003),
LOCKOUT_POLICY (E010: a key an Axes setting gives; E011: not a dict, or a key a site does not
send), LOCKOUT_DEVICE_COOKIE (E012: not a cookie name of its own), LOCKOUT_UNLOCK_EMAIL (E013:
not a bool, or on without the page of its links).

The service checks reach it with a short timeout: a login call that only reads (the policy
Axes' settings and LOCKOUT_POLICY give, LOCKOUT_SCOPE, LOCKOUT_API_TOKEN) and a one-record
listing with LOCKOUT_ADMIN_TOKEN. A refused token, scope or policy and a LOCKOUT_URL without
the API are errors; an unreachable service is a warning (a deployment may start the site
before the service) and an error under ``check --deploy``. A wrong admin token counts as a
failed admin login at the service, as any other would.
"""

from axes.conf import settings as axes_settings
from axes.handlers.proxy import AxesProxyHandler
from axes.middleware import AxesMiddleware
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from lockout_axes import client, devices, handler, unlock

TAG = "lockout"
CHECK_TIMEOUT_SECONDS = 2
# An address of the documentation range (RFC 5737): the probe reads its counts, nothing else.
PROBE_IP = "192.0.2.1"
MIDDLEWARE_PATH = "lockout_axes.middleware.LockoutMiddleware"

SETTING_CHECKS = (
    ("lockout_axes.E001", client.on_error),
    ("lockout_axes.E002", client.timeout_seconds),
)


def register():
    checks.register(check_settings, TAG)
    checks.register(check_service, TAG)
    checks.register(check_service_for_deployment, TAG, deploy=True)


def check_settings(app_configs, **kwargs):
    """The LOCKOUT_* settings and the middleware while LockoutHandler is in use; under another
    handler (a site rolled back to Axes' own) only a warning that lockout_axes is unused."""
    if not handler.in_use():
        return [
            checks.Warning(
                f"AXES_HANDLER is {axes_settings.AXES_HANDLER!r}: lockout_axes is installed, "
                "but the lockout service keeps no failures",
                hint='set AXES_HANDLER = "lockout_axes.handler.LockoutHandler" to use it; after '
                "a rollback to Axes' handler this is expected (SILENCED_SYSTEM_CHECKS = "
                '["lockout_axes.W002"], or remove lockout_axes from INSTALLED_APPS)',
                id="lockout_axes.W002",
            )
        ]
    errors = []
    for check_id, read_setting in SETTING_CHECKS:
        try:
            read_setting()
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id=check_id))
    if not _lockout_middleware_wraps_axes(settings.MIDDLEWARE):
        errors.append(
            checks.Error(
                "MIDDLEWARE has no lockout_axes.middleware.LockoutMiddleware right before "
                "axes.middleware.AxesMiddleware: a login refused while the lockout service is "
                "unavailable would be answered as a lockout",
                hint=f'put "{MIDDLEWARE_PATH}" in MIDDLEWARE just before '
                '"axes.middleware.AxesMiddleware" (it answers the 503 of an outage)',
                id="lockout_axes.E003",
            )
        )
    for kind, message, fix in client.lockout_policy_problems():
        check_id = "lockout_axes.E010" if kind == "axes" else "lockout_axes.E011"
        errors.append(checks.Error(message, hint=fix, id=check_id))
    cookie_problem = devices.cookie_name_problem()
    if cookie_problem:
        errors.append(
            checks.Error(
                cookie_problem,
                hint='name a cookie of its own, such as LOCKOUT_DEVICE_COOKIE = "login_device"',
                id="lockout_axes.E012",
            )
        )
    errors.extend(_unlock_email_errors())
    return errors


def _unlock_email_errors():
    value = getattr(settings, "LOCKOUT_UNLOCK_EMAIL", False)
    if not isinstance(value, bool):
        return [
            checks.Error(
                f"LOCKOUT_UNLOCK_EMAIL must be True or False, not {value!r}",
                hint="True mails the user of a locked username an unlock link",
                id="lockout_axes.E013",
            )
        ]
    if not value:
        return []
    try:
        reverse(unlock.URL_NAME, kwargs={"token": "t"})
    except NoReverseMatch:
        return [
            checks.Error(
                "LOCKOUT_UNLOCK_EMAIL is on, but the site's URLs have no page for its links",
                hint='add path("account/lockout/", include("lockout_axes.urls")) to the '
                "site's urlpatterns",
                id="lockout_axes.E013",
            )
        ]
    return []


def check_service(app_configs, **kwargs):
    if not handler.in_use():
        return []
    problems = []
    try:
        _probe_login()
    except client.InvalidSetting:
        pass  # check_settings reports it; the service never saw it.
    except client.ServiceUnavailable as error:
        problems.append(
            checks.Warning(
                f"lockout service unavailable: {error}",
                hint="start it, or correct LOCKOUT_URL; until it answers, logins get "
                "LOCKOUT_ON_ERROR's verdict",
                id="lockout_axes.W001",
            )
        )
        return problems
    except client.RequestRejected as error:
        problems.append(checks.Error(str(error), hint=_hint(error), id=_rejection_id(error)))
    try:
        client.admin_call("GET", "/v1/attempts", limit=1, timeout=CHECK_TIMEOUT_SECONDS)
    except client.MissingSetting as error:
        problems.append(checks.Error(str(error), hint=ADMIN_TOKEN_HINT, id="lockout_axes.E007"))
    except client.RequestRejected as error:
        # Other refusals (the scope, the URL's path) are the login probe's, reported above.
        if error.status in (401, 403):
            problems.append(checks.Error(str(error), hint=ADMIN_TOKEN_HINT, id="lockout_axes.E008"))
    except client.ServiceUnavailable:
        pass  # The login probe answered: a failing listing is an outage of its own, not a setting.
    return problems


def check_service_for_deployment(app_configs, **kwargs):
    if not handler.in_use():
        return []
    try:
        _probe_login()
    except client.ServiceUnavailable as error:
        return [
            checks.Error(
                f"lockout service unavailable: {error}",
                hint="a deployed site needs its lockout service: start it, or correct LOCKOUT_URL",
                id="lockout_axes.E009",
            )
        ]
    except (client.RequestRejected, client.InvalidSetting):
        pass  # check_service and check_settings report them.
    return []


ADMIN_TOKEN_HINT = (
    "axes_reset*, axes_list_attempts and the admin's Access attempts call the service with "
    "LOCKOUT_ADMIN_TOKEN: set it to the service's admin.token"
)


def _probe_login():
    """A login call that only reads, as a login of this site would send it."""
    request = HttpRequest()
    request.method = "POST"
    request.path = request.path_info = "/"
    request.META.update(REMOTE_ADDR=PROBE_IP, PATH_INFO="/")
    AxesProxyHandler.update_request(request)
    request.axes_ip_address = PROBE_IP
    body = handler.probe_body(request)
    client.probe_call("/v1/check", body, timeout=CHECK_TIMEOUT_SECONDS)


def _hint(error):
    if error.status == 403:
        return (
            "the service binds LOCKOUT_API_TOKEN to other scopes: give the site the token of "
            "its LOCKOUT_SCOPE (the service's api_tokens), or the service's api_token"
        )
    if error.status == 401:
        return "the login calls carry LOCKOUT_API_TOKEN: set it to the service's api_token"
    if error.status in (404, 405):
        return "LOCKOUT_URL is the service's base URL, such as http://lockout:8080"
    return (
        "the error names the field: LOCKOUT_SCOPE, the AXES_* setting behind the policy, or "
        "LOCKOUT_POLICY's key (policy.<key>)"
    )


def _rejection_id(error):
    if error.status in (401, 403):
        return "lockout_axes.E004"
    if error.status in (404, 405):
        return "lockout_axes.E005"
    return "lockout_axes.E006"


def _lockout_middleware_wraps_axes(middleware):
    """Whether LockoutMiddleware comes before (outside) Axes' middleware, or a subclass of it."""
    lockout = [index for index, path in enumerate(middleware) if path == MIDDLEWARE_PATH]
    axes = [index for index, path in enumerate(middleware) if _is_axes_middleware(path)]
    return bool(lockout and axes) and lockout[0] < axes[0]


def _is_axes_middleware(path):
    try:
        return issubclass(import_string(path), AxesMiddleware)
    except (ImportError, TypeError):
        return False
