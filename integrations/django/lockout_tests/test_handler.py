"""LockoutHandler and its client where Axes' own tests do not reach: tokens, settings, the
policy sent, scopes, requests without an IP, and the service's refusals (checks.py's tests are in
test_checks.py, the misconfigurations of a whole site in test_climweb_site.py)."""

import logging
from datetime import timedelta

import pytest
from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import authenticate
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from lockout_axes import client, transport
from lockout_axes.checks import check_settings
from lockout_tests import services
from lockout_tests.support import (
    DATABASE_HANDLER,
    LOCKOUT_HANDLER,
    TEST_SCOPE,
    NamedUser,
    fail,
    login_request,
    records,
)

SECONDS_PER_DAY = 86400
# The service's admin.failure_limit by default: wrong admin credentials from one address.
ADMIN_FAILURE_LIMIT = 5


@pytest.fixture(autouse=True)
def lockout_handler(settings):
    settings.AXES_HANDLER = LOCKOUT_HANDLER
    settings.AXES_FAILURE_LIMIT = 2
    return settings


@pytest.fixture(scope="module")
def api_token_service(lockout_binary, redis_url, workdir):
    """A second service, on the session's Redis, whose login calls need a bearer token."""
    with services.lockout_serve(
        lockout_binary, redis_url, workdir, api_token="login-calls-token"
    ) as service:
        yield service


def is_locked(username, ip_address="10.0.0.1"):
    return AxesProxyHandler.is_locked(login_request(ip_address), {"username": username})


def test_login_calls_carry_the_api_token(settings, api_token_service):
    settings.LOCKOUT_URL = api_token_service.url
    settings.LOCKOUT_API_TOKEN = api_token_service.api_token
    settings.LOCKOUT_ADMIN_TOKEN = api_token_service.admin_token
    fail("alice", times=2)
    assert is_locked("alice")
    assert AxesProxyHandler.reset_attempts() == 1


@pytest.mark.parametrize("on_error, verdict", [("deny", True), ("allow", False)])
def test_a_refused_api_token_leaves_logins_to_on_error_and_is_logged_once(
    settings, caplog, api_token_service, on_error, verdict
):
    settings.LOCKOUT_URL = api_token_service.url
    settings.LOCKOUT_API_TOKEN = "wrong-login-token"
    settings.LOCKOUT_ON_ERROR = on_error
    caplog.set_level(logging.WARNING, logger="lockout_axes.client")
    assert [is_locked("alice"), is_locked("bob")] == [verdict, verdict]
    [warning] = [record.getMessage() for record in caplog.records]
    assert "HTTP 401" in warning
    assert "set LOCKOUT_API_TOKEN to the service's api_token" in warning
    assert "wrong-login-token" not in warning


def test_a_wrong_admin_token_is_refused_and_never_shown(settings, caplog, api_token_service):
    settings.LOCKOUT_URL = api_token_service.url
    settings.LOCKOUT_ADMIN_TOKEN = "wrong-admin-token"
    with pytest.raises(client.RequestRejected, match="HTTP 401") as admin_refusal:
        AxesProxyHandler.reset_attempts()
    assert "set LOCKOUT_ADMIN_TOKEN to the service's admin.token" in str(admin_refusal.value)
    assert "wrong-admin-token" not in str(admin_refusal.value) + caplog.text


@pytest.fixture
def own_service(lockout_binary, redis_url, workdir):
    """A service of this test's own, whose admin lockouts no other test sees."""
    with services.lockout_serve(lockout_binary, redis_url, workdir) as service:
        yield service


def test_an_address_locked_out_of_the_admin_api_is_told_how_to_end_it(settings, own_service):
    settings.LOCKOUT_URL = own_service.url
    settings.LOCKOUT_ADMIN_TOKEN = "not-the-admin-token"
    statuses = []
    for _ in range(ADMIN_FAILURE_LIMIT + 1):
        with pytest.raises(client.RequestRejected) as refusal:
            AxesProxyHandler.reset_attempts()
        statuses.append(refusal.value.status)
    assert statuses == [401] * ADMIN_FAILURE_LIMIT + [429]
    assert "lockout --scope _admin reset --ip ADDRESS" in str(refusal.value)
    assert "not-the-admin-token" not in str(refusal.value)


def test_admin_calls_need_the_admin_token(settings):
    settings.LOCKOUT_ADMIN_TOKEN = None
    with pytest.raises(client.MissingSetting, match="LOCKOUT_ADMIN_TOKEN") as raised:
        AxesProxyHandler.reset_attempts()
    assert isinstance(raised.value, client.LockoutError)
    assert isinstance(raised.value, ImproperlyConfigured)


@pytest.mark.parametrize(
    "setting, value",
    [("LOCKOUT_ON_ERROR", "maybe"), ("LOCKOUT_TIMEOUT", "1"), ("LOCKOUT_TIMEOUT", 0)],
)
def test_an_invalid_setting_denies_logins_and_is_named_once(settings, caplog, setting, value):
    settings.LOCKOUT_URL = f"http://127.0.0.1:{services.free_port()}"
    setattr(settings, setting, value)
    caplog.set_level(logging.WARNING, logger="lockout_axes.client")
    assert [is_locked("alice"), is_locked("bob")] == [True, True]
    named = [record for record in caplog.records if f"{setting} must be" in record.getMessage()]
    assert len(named) == 1


@pytest.mark.parametrize(
    "setting, value, check_id",
    [
        ("LOCKOUT_ON_ERROR", "maybe", "lockout_axes.E001"),
        ("LOCKOUT_TIMEOUT", "1", "lockout_axes.E002"),
    ],
)
def test_system_checks_name_invalid_settings(settings, setting, value, check_id):
    assert check_settings(None) == []
    setattr(settings, setting, value)
    assert [error.id for error in check_settings(None)] == [check_id]
    with pytest.raises(SystemCheckError, match=setting):
        call_command("check")


def test_a_site_without_the_lockout_handler_is_warned(settings):
    settings.AXES_HANDLER = DATABASE_HANDLER
    assert [warning.id for warning in check_settings(None)] == ["lockout_axes.W002"]


def test_a_policy_the_service_refuses_is_no_verdict_and_the_log_names_the_key(settings, caplog):
    settings.AXES_COOLOFF_TIME = timedelta(days=400)
    caplog.set_level(logging.WARNING, logger="lockout_axes.client")
    assert is_locked("alice") is True, "LOCKOUT_ON_ERROR's default, deny"
    [warning] = [record.getMessage() for record in caplog.records]
    assert "HTTP 400" in warning and "policy.cooloff" in warning


def test_no_cooloff_locks_for_365_days(settings):
    settings.AXES_COOLOFF_TIME = None
    fail("alice", times=2)
    [record] = records()
    assert record["locked"]
    assert record["retry_after_secs"] > 364 * SECONDS_PER_DAY


def test_the_policy_is_axes_settings_of_each_request(settings):
    settings.AXES_FAILURE_LIMIT = lambda request, credentials: (
        1 if credentials["username"] == "bob" else 3
    )
    settings.AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
    fail("alice", times=2)
    assert not is_locked("alice")
    fail("alice")
    assert is_locked("alice")
    fail("bob")
    assert is_locked("bob")
    assert AxesProxyHandler.get_failures(login_request("10.0.0.1"), {"username": "alice"}) == 3


def test_a_request_without_ip_counts_as_0_0_0_0():
    request = login_request("10.0.0.1")
    del request.META["REMOTE_ADDR"]
    AxesProxyHandler.user_login_failed(None, {"username": "alice"}, request)
    assert [record["parameters"] for record in records()] == [{"ip": "0.0.0.0"}]


def test_an_overlong_username_is_cut_to_255_characters(settings):
    settings.AXES_LOCKOUT_PARAMETERS = ["username"]
    fail("u" * 300, times=2)
    assert is_locked("u" * 255 + "another tail")
    assert [record["parameters"] for record in records()] == [{"username": "u" * 255}]


def test_scopes_keep_records_apart(settings):
    settings.LOCKOUT_SCOPE = TEST_SCOPE
    fail("alice", times=2)
    assert is_locked("alice")
    settings.LOCKOUT_SCOPE = None
    assert not is_locked("alice")
    assert records() == []


def test_reset_attempts_by_ip_or_username(settings):
    settings.AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
    for username, ip_address in [
        ("alice", "10.0.0.1"),
        ("bob", "10.0.0.1"),
        ("bob", "10.0.0.2"),
    ]:
        fail(username, ip_address)
    fail("carol", "10.0.0.3")
    removed = AxesProxyHandler.reset_attempts(
        ip_address="10.0.0.1", username="bob", ip_or_username=True
    )
    assert removed == 3
    assert [record["parameters"]["username"] for record in records()] == ["carol"]


def test_a_successful_login_resets_when_axes_says_so(settings, caplog):
    settings.AXES_RESET_ON_SUCCESS = True
    caplog.set_level(logging.INFO, logger="lockout_axes")
    fail("alice")
    request = login_request("10.0.0.1")
    AxesProxyHandler.user_logged_in(None, request, NamedUser("alice"))
    assert records() == []
    assert "AXES: Successful login by" in caplog.text


def service_counts(url):
    """The service's checks that found a lock and failures reported, from its /metrics."""
    status, body = transport.request("GET", url, "/metrics", "", None, 5)
    assert status == 200
    samples = dict(line.rsplit(" ", 1) for line in body.decode().splitlines() if line[:1] != "#")
    locked = samples.get('lockout_checks_total{verdict="lockout"}', "0")
    return int(locked), int(samples.get("lockout_failures_total", "0"))


@pytest.mark.parametrize(("reset_cool_off", "failures_sent"), [(False, 0), (True, 1)])
def test_a_refused_login_makes_one_call_unless_it_resets_the_cool_off(
    settings, lockout_service, reset_cool_off, failures_sent
):
    settings.AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = reset_cool_off
    settings.AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend"]
    fail("mallory", times=2)
    checks, failures = service_counts(lockout_service.url)
    request = login_request("10.0.0.1")
    assert authenticate(request, username="mallory", password="wrong") is None
    assert request.axes_locked_out
    assert service_counts(lockout_service.url) == (checks + 1, failures + failures_sent)
