"""Django settings of the tests: Axes' own test settings, with lockout_axes installed first (so
its ``axes_list_attempts`` wins) and a generous LOCKOUT_TIMEOUT (the tests of an unavailable
service set their own). LOCKOUT_URL and LOCKOUT_ADMIN_TOKEN come from the session's service.
"""

from lockout_tests.upstream import add_axes_tests_to_path

add_axes_tests_to_path()

from tests.settings import *  # noqa: E402, F403
from tests.settings import INSTALLED_APPS  # noqa: E402

INSTALLED_APPS = ["lockout_axes", *INSTALLED_APPS]

LOCKOUT_TIMEOUT = 5

# The handler a site switched to lockout runs; tests of the database handler set their own. At
# start-up, it also decides which admin pages are registered (lockout_axes.admin).
AXES_HANDLER = "lockout_axes.handler.LockoutHandler"

# The admin's CSS and JavaScript, for the Access attempts page in a real browser (live_server).
INSTALLED_APPS += ["django.contrib.staticfiles"]
STATIC_URL = "/static/"

# The 503 of a login refused while the service is unavailable, just before Axes' middleware.
MIDDLEWARE = [
    added
    for entry in MIDDLEWARE  # noqa: F405
    for added in (
        ["lockout_axes.middleware.LockoutMiddleware", entry]
        if entry == "axes.middleware.AxesMiddleware"
        else [entry]
    )
]
