"""Two Django processes sharing one service: failures posted to one lock the login in the other,
and a reset through the handler unlocks both."""

from urllib.parse import urlencode

import urllib3
from axes.handlers.proxy import AxesProxyHandler

from lockout_tests import services
from lockout_tests.support import LOCKOUT_HANDLER, SITE_PASSWORD


def login(site_url, password):
    body = urlencode({"username": "alice", "password": password})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return urllib3.request(
        "POST", f"{site_url}/login", body=body, headers=headers, timeout=10
    ).status


def test_failures_in_one_process_lock_the_login_in_the_other(settings, lockout_service, workdir):
    settings.AXES_HANDLER = LOCKOUT_HANDLER
    env = {"LOCKOUT_URL": lockout_service.url}
    with services.wsgi_site("lockout_tests.two_site", workdir, env) as first:
        with services.wsgi_site("lockout_tests.two_site", workdir, env) as second:
            assert login(second, SITE_PASSWORD) == 200
            assert [login(first, "wrong") for _ in range(3)] == [401, 401, 429]
            assert login(second, SITE_PASSWORD) == 429
            assert AxesProxyHandler.reset_attempts() == 1
            assert login(second, SITE_PASSWORD) == 200
            assert login(first, SITE_PASSWORD) == 200
