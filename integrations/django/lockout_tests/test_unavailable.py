"""A service that refuses connections, never answers, or is degraded (its Redis is gone):
LOCKOUT_ON_ERROR decides the login, no login waits much longer than LOCKOUT_TIMEOUT, and the
log says so once per outage, however many requests and threads run into it. With "deny" the
login gets LockoutMiddleware's 503, not Axes' lockout: no ``user_locked_out``, no "Locking out"."""

import json
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from axes.handlers.proxy import AxesProxyHandler
from django.urls import reverse

from lockout_axes.client import ServiceUnavailable
from lockout_tests import services
from lockout_tests.support import LOCKOUT_HANDLER, login_request

TIMEOUT = 0.5
# A bound on waiting, generous for a loaded machine; not a performance claim.
WAIT_BOUND = TIMEOUT + 1
CLIENT_LOGGER = "lockout_axes.client"


@pytest.fixture
def closed_port():
    return f"http://127.0.0.1:{services.free_port()}"


@pytest.fixture
def black_hole():
    """A port that accepts connections and never reads from them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture(scope="module")
def degraded_service(lockout_binary, workdir):
    with services.redis_server(workdir) as redis_url:
        with services.lockout_serve(lockout_binary, redis_url, workdir) as service:
            services.shut_down_redis(redis_url)
            yield service.url


@pytest.fixture(params=["closed_port", "black_hole", "degraded_service"])
def unavailable_url(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def outage_log(caplog):
    caplog.set_level(logging.INFO, logger=CLIENT_LOGGER)
    return lambda level: [
        record.getMessage()
        for record in caplog.records
        if record.name == CLIENT_LOGGER and record.levelno == level
    ]


@pytest.fixture
def unavailable(settings, unavailable_url):
    settings.AXES_HANDLER = LOCKOUT_HANDLER
    settings.LOCKOUT_URL = unavailable_url
    settings.LOCKOUT_TIMEOUT = TIMEOUT
    return settings


def login(django_client, password, **headers):
    return django_client.post(
        reverse("admin:login"),
        {"username": "admin", "password": password},
        REMOTE_ADDR="10.9.9.9",
        **headers,
    )


def timed_login(django_client, password):
    started = time.monotonic()
    response = login(django_client, password)
    return response.status_code, time.monotonic() - started


@pytest.mark.django_db
@pytest.mark.parametrize("unavailable_url", ["closed_port", "degraded_service"], indirect=True)
def test_deny_answers_503_unavailable_not_a_lockout(
    unavailable, client, admin_user, lockout_signals, caplog
):
    unavailable.LOCKOUT_ON_ERROR = "deny"
    caplog.set_level(logging.INFO)
    for password in ("password", "wrong"):
        response = login(client, password)
        assert response.status_code == 503
        assert response.templates[-1].name == "lockout_axes/unavailable.html"
        assert b"Logging in is temporarily unavailable" in response.content
    assert lockout_signals == []
    handler_log = [r.getMessage() for r in caplog.records if r.name == "lockout_axes.handler"]
    assert len([line for line in handler_log if "lockout service is unavailable" in line]) == 2
    assert not [line for line in caplog.messages if "Locking out" in line]


@pytest.mark.django_db
def test_deny_answers_503_in_an_async_stack_too(unavailable, async_client, admin_user):
    unavailable.LOCKOUT_ON_ERROR = "deny"

    async def login():
        form = {"username": "admin", "password": "password"}
        return await async_client.post(reverse("admin:login"), form)

    response = async_to_sync(login)()
    assert response.status_code == 503
    assert b"Logging in is temporarily unavailable" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [{"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}, {"HTTP_ACCEPT": "application/json"}],
)
def test_deny_answers_json_to_xhr_and_api_requests(unavailable, client, admin_user, headers):
    unavailable.LOCKOUT_ON_ERROR = "deny"
    response = login(client, "password", **headers)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"] == "login_unavailable"


@pytest.mark.django_db
def test_the_unavailable_page_is_the_sites_own_template(unavailable, client, admin_user, tmp_path):
    unavailable.LOCKOUT_ON_ERROR = "deny"
    (tmp_path / "lockout_axes").mkdir()
    (tmp_path / "lockout_axes" / "unavailable.html").write_text(
        "Our login is resting: {{ message }}"
    )
    unavailable.TEMPLATES = [{**unavailable.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    response = login(client, "password")
    assert response.status_code == 503
    assert response.content.startswith(b"Our login is resting: Logging in is temporarily")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "on_error, right_password_status, wrong_password_status",
    [("deny", 503, 503), ("allow", 302, 200)],
)
def test_on_error_decides_logins_within_the_timeout(
    unavailable,
    outage_log,
    client,
    admin_user,
    on_error,
    right_password_status,
    wrong_password_status,
):
    unavailable.LOCKOUT_ON_ERROR = on_error
    for password, expected_status in [
        ("password", right_password_status),
        ("wrong", wrong_password_status),
    ] * 2:
        status, elapsed = timed_login(client, password)
        assert (status, password) == (expected_status, password)
        assert elapsed < WAIT_BOUND
    assert len(outage_log(logging.WARNING)) == 1


@pytest.mark.django_db
def test_one_warning_when_the_outage_starts_and_one_info_when_it_ends(
    unavailable, outage_log, client, admin_user, lockout_service
):
    unavailable.LOCKOUT_ON_ERROR = "allow"
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(
            pool.map(
                lambda _: AxesProxyHandler.is_locked(login_request("10.9.9.9")),
                range(16),
            )
        )
    assert verdicts == [False] * 16
    [warning] = outage_log(logging.WARNING)
    assert unavailable.LOCKOUT_URL in warning
    assert outage_log(logging.INFO) == []

    unavailable.LOCKOUT_URL = lockout_service.url
    for _ in range(3):
        assert timed_login(client, "password")[0] == 302
    assert outage_log(logging.INFO) == [f"lockout service at {lockout_service.url} answers again"]
    assert len(outage_log(logging.WARNING)) == 1


def test_the_outage_log_names_the_service_without_its_credentials(
    settings, outage_log, closed_port
):
    settings.AXES_HANDLER = LOCKOUT_HANDLER
    settings.LOCKOUT_URL = closed_port.replace("http://", "http://site:s3cret-pass@")
    settings.LOCKOUT_TIMEOUT = TIMEOUT
    settings.LOCKOUT_ON_ERROR = "allow"
    assert AxesProxyHandler.is_locked(login_request("10.9.9.8")) is False
    [warning] = outage_log(logging.WARNING)
    assert closed_port in warning
    assert "s3cret-pass" not in warning
    assert "site" not in warning


@pytest.fixture(scope="module")
def insured_service(lockout_binary, workdir):
    """A service with ``on_store_error = "local"`` whose Redis is gone."""
    with services.redis_server(workdir) as redis_url:
        with services.lockout_serve(
            lockout_binary, redis_url, workdir, on_store_error="local"
        ) as service:
            services.shut_down_redis(redis_url)
            yield service.url


@pytest.mark.django_db
def test_a_service_counting_locally_decides_logins_itself(
    settings, insured_service, outage_log, client, admin_user
):
    settings.AXES_HANDLER = LOCKOUT_HANDLER
    settings.LOCKOUT_URL = insured_service
    settings.LOCKOUT_TIMEOUT = TIMEOUT
    settings.LOCKOUT_ON_ERROR = "allow"
    statuses = [timed_login(client, "wrong")[0] for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses[-1] == 429, statuses
    assert timed_login(client, "password")[0] == 429, "locked, though LOCKOUT_ON_ERROR allows"
    assert outage_log(logging.WARNING) == []


@pytest.mark.parametrize("unavailable_url", ["closed_port", "black_hole"], indirect=True)
def test_admin_calls_raise_while_unavailable(unavailable, lockout_service):
    with pytest.raises(ServiceUnavailable) as raised:
        AxesProxyHandler.reset_attempts(username="alice")
    assert lockout_service.admin_token not in str(raised.value)
