"""Fixtures of the Climweb-like site's tests: its user, a second service whose login calls need
an API token, and an address where no service answers."""

import pytest
from django.core.cache import cache

from lockout_tests import services

PASSWORD = "correct-horse-battery"
USERNAME = "operator"
# A login token the service binds to another site's scope.
OTHER_SITES_TOKEN = "other-site-login-token"


@pytest.fixture(autouse=True)
def fresh_allauth_rate_limits():
    """allauth counts failed logins in the cache (5 per 5 minutes): each test starts without."""
    cache.clear()


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser(USERNAME, "operator@example.org", PASSWORD)


@pytest.fixture(scope="session")
def api_token_service(lockout_binary, redis_url, workdir):
    with services.lockout_serve(
        lockout_binary,
        redis_url,
        workdir,
        api_token="climweb-login-token",
        api_tokens=[{"token": OTHER_SITES_TOKEN, "scopes": ["other-site"]}],
    ) as service:
        yield service


@pytest.fixture
def closed_port():
    return f"http://127.0.0.1:{services.free_port()}"
