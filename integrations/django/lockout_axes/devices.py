"""Device cookies (``LOCKOUT_DEVICE_COOKIE = "name"``): the device token the service answers a
successful login with is kept in that browser's cookie and sent back with its later login
calls, so that the locks strangers cause on its username do not refuse it (docs/api.md, "Device
tokens"). A forged, expired or other user's token counts as none at the service.

The handler reads the cookie into each login call (``token_of``) and, after a successful
login, puts the new token on the request (``keep``): Axes' ``user_logged_in`` has the request,
not the response, so ``LockoutMiddleware`` sets the cookie on the way out (``set_cookie``).
"""

import re
from datetime import timedelta
from logging import getLogger

from django.conf import settings

log = getLogger(__name__)

# How long the cookie lasts when the success answer does not say how long its token is valid
# (a service older than device_token_expires_in_secs): the service's default devices.token_ttl.
# A token that expires sooner counts as none, and the next login replaces it.
DEFAULT_MAX_AGE = timedelta(days=90)
# The service counts a longer token as none; sending one could only make the call too large
# to take (a lost verdict, which LOCKOUT_ON_ERROR = "allow" would turn into no protection).
MAX_TOKEN_CHARS = 4096
# RFC 6265's cookie-name token.
COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
TOKEN_ATTRIBUTE = "lockout_device_token"

# Whether this process has logged that the service issues no device tokens.
_told_no_tokens = False


def cookie_name():
    """LOCKOUT_DEVICE_COOKIE while device cookies are on and it is a name Django can set; None
    otherwise (a bad name is check lockout_axes.E012's)."""
    if cookie_name_problem():
        return None
    return getattr(settings, "LOCKOUT_DEVICE_COOKIE", None)


def cookie_name_problem():
    """What is wrong with LOCKOUT_DEVICE_COOKIE, or None."""
    name = getattr(settings, "LOCKOUT_DEVICE_COOKIE", None)
    if name is None:
        return None
    if not isinstance(name, str) or not COOKIE_NAME.fullmatch(name):
        return f"LOCKOUT_DEVICE_COOKIE must be a cookie name (letters, digits, -_.), not {name!r}"
    taken = {settings.SESSION_COOKIE_NAME: "SESSION", settings.CSRF_COOKIE_NAME: "CSRF"}
    if name in taken:
        return f"LOCKOUT_DEVICE_COOKIE is {name!r}, the name of Django's {taken[name]} cookie"
    return None


def token_of(request):
    """The device token the request's browser keeps, if any."""
    name = cookie_name()
    if name is None:
        return None
    token = request.COOKIES.get(name)
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return token


def keep(request, answer):
    """After a successful login: the answer's new device token, for the response's cookie."""
    global _told_no_tokens
    if cookie_name() is None or answer is None:
        return
    token = answer.get("device_token")
    if token:
        valid_for = answer.get("device_token_expires_in_secs")
        if isinstance(valid_for, int) and valid_for > 0:
            max_age = timedelta(seconds=valid_for)
        else:
            max_age = DEFAULT_MAX_AGE
        setattr(request, TOKEN_ATTRIBUTE, (token, max_age))
    elif not _told_no_tokens:
        _told_no_tokens = True
        log.warning(
            "LOCKOUT_DEVICE_COOKIE is set, but the lockout service issues no device tokens: "
            "set its [devices] secret (LOCKOUT_DEVICES_SECRET)"
        )


def set_cookie(request, response):
    """The cookie of the device token a successful login got, on that login's response."""
    kept = getattr(request, TOKEN_ATTRIBUTE, None)
    name = cookie_name()
    if kept and name:
        token, max_age = kept
        response.set_cookie(
            name, token, max_age=max_age, secure=True, httponly=True, samesite="Lax"
        )
