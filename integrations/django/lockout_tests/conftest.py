"""Session fixtures: a private redis-server and `lockout serve` for the whole run, the Django
settings pointing at them, and records and logs cleared before every test."""

import pytest
from django.test import override_settings

from lockout_axes import client
from lockout_tests import services
from lockout_tests.support import TEST_SCOPE


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
    with services.lockout_serve(lockout_binary, redis_url, workdir) as service:
        yield service


@pytest.fixture(scope="session", autouse=True)
def lockout_settings(lockout_service):
    with override_settings(
        LOCKOUT_URL=lockout_service.url, LOCKOUT_ADMIN_TOKEN=lockout_service.admin_token
    ):
        yield


@pytest.fixture(autouse=True)
def cleared_records(lockout_settings):
    for scope in (None, TEST_SCOPE):
        with override_settings(LOCKOUT_SCOPE=scope):
            client.admin_call("DELETE", "/v1/attempts", all="true")
            client.admin_call("DELETE", "/v1/logs", older_than="0s")
