"""A one-view Django site behind Axes and LockoutHandler, served by wsgiref, for the test that
runs two of them as separate processes sharing one lockout service:
``python -m lockout_tests.two_site PORT`` with LOCKOUT_URL in the environment. ``POST /login``
answers 200 for SITE_PASSWORD, 401 for another password, 429 once Axes locks the client out.
"""

import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="two-site-tests",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "axes", "lockout_axes"],
    MIDDLEWARE=["lockout_axes.middleware.LockoutMiddleware", "axes.middleware.AxesMiddleware"],
    AUTHENTICATION_BACKENDS=["axes.backends.AxesStandaloneBackend", f"{__name__}.PasswordBackend"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    AXES_HANDLER="lockout_axes.handler.LockoutHandler",
    AXES_FAILURE_LIMIT=3,
    LOCKOUT_URL=os.environ["LOCKOUT_URL"],
    LOCKOUT_TIMEOUT=5,
)
django.setup()

# Imported once Django is set up: they import Axes, which reads the settings on import.
from django.contrib.auth import authenticate  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from lockout_tests.support import SITE_PASSWORD, NamedUser  # noqa: E402


class PasswordBackend:
    """Lets any username in with SITE_PASSWORD; the site keeps no users."""

    def authenticate(self, request, username=None, password=None):
        return NamedUser(username) if password == SITE_PASSWORD else None


@csrf_exempt
def login(request):
    password = request.POST.get("password")
    if authenticate(request, username=request.POST.get("username"), password=password) is None:
        return HttpResponse("wrong password", status=401)
    return HttpResponse("welcome")


def ready(request):
    return HttpResponse("ready")


urlpatterns = [path("login", login), path("ready", ready)]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    make_server(
        "127.0.0.1", port, get_wsgi_application(), handler_class=QuietHandler
    ).serve_forever()
