"""Names and helpers the test modules share."""

from axes.handlers.proxy import AxesProxyHandler
from django.http import HttpRequest

from lockout_axes import client

LOCKOUT_HANDLER = "lockout_axes.handler.LockoutHandler"
DATABASE_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
TEST_SCOPE = "django-tests"
# The password two_site.py lets in.
SITE_PASSWORD = "right-password"


def records():
    """The service's attempt records of LOCKOUT_SCOPE."""
    return list(client.iter_attempts())


def login_request(ip_address, user_agent="test-browser"):
    """A bare login POST; AxesProxyHandler gives it its ``axes_*`` attributes."""
    request = HttpRequest()
    request.method = "POST"
    request.path = request.path_info = "/admin/login/"
    request.META.update(REMOTE_ADDR=ip_address, HTTP_USER_AGENT=user_agent, PATH_INFO=request.path)
    return request


def fail(username, ip_address="10.0.0.1", times=1):
    """Failed logins, reported as Django's ``user_login_failed`` reports them."""
    for _ in range(times):
        AxesProxyHandler.user_login_failed(None, {"username": username}, login_request(ip_address))


class NamedUser:
    """A user with only a name, for code that only asks for it."""

    def __init__(self, username):
        self.username = username

    def get_username(self):
        return self.username
