"""Session fixtures: a private redis-server and `lockout serve` for the whole run, the Django
settings pointing at them, and records and logs cleared before every test.

The Climweb-like site (climweb_site/) has settings of its own: its tests run only in a pytest run
with ``--ds=lockout_tests.climweb_site.settings``, and only they run there.
"""

import os
import secrets
from pathlib import Path

import pytest
from axes.signals import user_locked_out
from django.conf import settings
from django.test import override_settings

from lockout_axes import client
from lockout_tests import services
from lockout_tests.support import TEST_SCOPE

CLIMWEB_SETTINGS = "lockout_tests.climweb_site.settings"
CLIMWEB_SITE = Path(__file__).parent / "climweb_site"


def pytest_ignore_collect(collection_path, config):
    in_climweb_site = collection_path == CLIMWEB_SITE or CLIMWEB_SITE in collection_path.parents
    climweb_run = os.environ.get("DJANGO_SETTINGS_MODULE") == CLIMWEB_SETTINGS
    if in_climweb_site and not climweb_run:
        return True
    if climweb_run and not in_climweb_site and collection_path.is_file():
        return True
    return None


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("lockout")


@pytest.fixture(scope="session")
def redis_url(workdir):
    with services.redis_server(workdir) as url:
        yield url


@pytest.fixture(scope="session")
def lockout_binary():
    binary = services.lockout_binary()
    if not binary.is_file():
        pytest.fail(
            f"no lockout binary at {binary}: build it (cargo build) or set LOCKOUT_BIN",
            pytrace=False,
        )
    return binary


@pytest.fixture(scope="session")
def lockout_service(lockout_binary, redis_url, workdir):
    """The service of every test, with device and unlock tokens on."""
    secret = secrets.token_urlsafe(24)
    with services.lockout_serve(
        lockout_binary, redis_url, workdir, devices_secret=secret
    ) as service:
        yield service


@pytest.fixture(scope="session", autouse=True)
def lockout_settings(lockout_service):
    with override_settings(
        LOCKOUT_URL=lockout_service.url, LOCKOUT_ADMIN_TOKEN=lockout_service.admin_token
    ):
        yield


@pytest.fixture(autouse=True)
def cleared_records(lockout_settings):
    for scope in {None, TEST_SCOPE, getattr(settings, "LOCKOUT_SCOPE", None)}:
        with override_settings(LOCKOUT_SCOPE=scope):
            client.admin_call("DELETE", "/v1/attempts", all="true")
            client.admin_call("DELETE", "/v1/logs", older_than="0s")


@pytest.fixture(autouse=True)
def fresh_outage_log(monkeypatch):
    """Each test starts as a new process would: no outage cause told yet."""
    monkeypatch.setattr(client, "_state", client._ProcessState())


@pytest.fixture
def lockout_signals():
    """The usernames of the ``user_locked_out`` signals sent during the test."""
    received = []

    def receive(sender, username, **kwargs):
        received.append(username)

    user_locked_out.connect(receive)
    yield received
    user_locked_out.disconnect(receive)
