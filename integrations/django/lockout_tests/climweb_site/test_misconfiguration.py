"""Each misconfiguration an operator can make when switching the site to lockout: the
``lockout`` system checks name it with its fix, and no login ever gets a 500 for it: a login
call without a verdict is left to LOCKOUT_ON_ERROR, and the log tells the cause once."""

import logging
from datetime import timedelta

import pytest
from django.core import checks

from lockout_tests.climweb_site.conftest import OTHER_SITES_TOKEN, PASSWORD, USERNAME
from lockout_tests.climweb_site.support import LOGIN_PAGES


def missing_api_token(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_URL = api_token_service.url
    settings.LOCKOUT_ADMIN_TOKEN = api_token_service.admin_token
    settings.LOCKOUT_API_TOKEN = None


def wrong_api_token(settings, service, api_token_service, closed_port):
    missing_api_token(settings, service, api_token_service, closed_port)
    settings.LOCKOUT_API_TOKEN = "not-the-login-token"


def other_sites_api_token(settings, service, api_token_service, closed_port):
    missing_api_token(settings, service, api_token_service, closed_port)
    settings.LOCKOUT_API_TOKEN = OTHER_SITES_TOKEN


def refused_scope(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_SCOPE = "_climweb"


def refused_policy(settings, service, api_token_service, closed_port):
    settings.AXES_COOLOFF_TIME = timedelta(days=400)


def wrong_path(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_URL = f"{service.url}/lockout"


def missing_admin_token(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_ADMIN_TOKEN = None


def wrong_admin_token(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_ADMIN_TOKEN = "not-the-admin-token"


def unreachable(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_URL = closed_port


def axes_setting_in_lockout_policy(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_POLICY = {"observe": True, "failure_limit": 10}


def operators_key_in_lockout_policy(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_POLICY = {"ipv6_prefix_length": 48}


def lockout_policy_not_a_dict(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_POLICY = [("observe", True)]


def refused_lockout_policy_value(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_POLICY = {"lockout_duration": "until further notice"}


def device_cookie_named_as_the_session(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_DEVICE_COOKIE = "sessionid"


def unlock_email_not_a_bool(settings, service, api_token_service, closed_port):
    settings.LOCKOUT_UNLOCK_EMAIL = "yes"


# Each misconfiguration: the checks it fails, what the log's warning names, and whether the
# login calls lose their verdict.
MISCONFIGURATIONS = {
    missing_api_token: (["lockout_axes.E004"], "LOCKOUT_API_TOKEN is not set", True),
    wrong_api_token: (["lockout_axes.E004"], "set LOCKOUT_API_TOKEN", True),
    other_sites_api_token: (["lockout_axes.E004"], "binds this LOCKOUT_API_TOKEN", True),
    refused_scope: (["lockout_axes.E006"], "scope", True),
    refused_policy: (["lockout_axes.E006"], "policy.cooloff", True),
    wrong_path: (["lockout_axes.E005"], "LOCKOUT_URL", True),
    missing_admin_token: (["lockout_axes.E007"], None, False),
    wrong_admin_token: (["lockout_axes.E008"], None, False),
    unreachable: (["lockout_axes.W001"], "Connection refused", True),
    axes_setting_in_lockout_policy: (["lockout_axes.E010"], "set AXES_FAILURE_LIMIT", True),
    operators_key_in_lockout_policy: (["lockout_axes.E011"], "'ipv6_prefix_length'", True),
    lockout_policy_not_a_dict: (["lockout_axes.E011"], "must be a dict", True),
    refused_lockout_policy_value: (["lockout_axes.E006"], "policy.lockout_duration", True),
    device_cookie_named_as_the_session: (["lockout_axes.E012"], None, False),
    unlock_email_not_a_bool: (["lockout_axes.E013"], None, False),
}
LOGINS_WITHOUT_VERDICT = [name for name, (_, _, lost) in MISCONFIGURATIONS.items() if lost]


@pytest.fixture
def misconfigure(settings, lockout_service, api_token_service, closed_port):
    return lambda mistake: mistake(settings, lockout_service, api_token_service, closed_port)


def lockout_checks(deploy=False):
    return checks.run_checks(tags=["lockout"], include_deployment_checks=deploy)


def test_the_site_as_configured_passes_the_checks():
    assert lockout_checks(deploy=True) == []


@pytest.mark.parametrize("mistake", MISCONFIGURATIONS, ids=lambda mistake: mistake.__name__)
def test_the_checks_name_each_misconfiguration_with_its_fix(misconfigure, mistake):
    misconfigure(mistake)
    expected_ids, _, _ = MISCONFIGURATIONS[mistake]
    found = lockout_checks()
    assert [message.id for message in found] == expected_ids
    assert all(message.hint for message in found)
    assert not any("not-the-" in message.msg for message in found), "a token in a message"


def test_an_unreachable_service_is_an_error_under_deploy(misconfigure):
    misconfigure(unreachable)
    assert [message.id for message in lockout_checks(deploy=True)] == [
        "lockout_axes.W001",
        "lockout_axes.E009",
    ]
    assert [message.level for message in lockout_checks(deploy=True)] == [
        checks.WARNING,
        checks.ERROR,
    ]


def test_unlock_emails_without_the_page_of_their_links_are_an_error(settings):
    settings.LOCKOUT_UNLOCK_EMAIL = True
    assert lockout_checks() == []
    settings.ROOT_URLCONF = "lockout_tests.admin_urls"
    [error] = lockout_checks()
    assert error.id == "lockout_axes.E013"
    assert 'include("lockout_axes.urls")' in error.hint


def test_a_missing_or_misplaced_lockout_middleware_is_an_error(settings):
    assert lockout_checks() == []
    lockout = "lockout_axes.middleware.LockoutMiddleware"
    others = [entry for entry in settings.MIDDLEWARE if entry != lockout]
    settings.MIDDLEWARE = others
    assert [message.id for message in lockout_checks()] == ["lockout_axes.E003"]
    settings.MIDDLEWARE = [*others, lockout]
    assert [message.id for message in lockout_checks()] == ["lockout_axes.E003"], "after Axes'"


@pytest.mark.django_db
@pytest.mark.parametrize("mistake", MISCONFIGURATIONS, ids=lambda mistake: mistake.__name__)
@pytest.mark.parametrize("on_error, status_without_verdict", [("deny", 503), ("allow", 302)])
def test_no_misconfiguration_turns_a_login_into_a_500(
    settings, misconfigure, client, operator, caplog, mistake, on_error, status_without_verdict
):
    misconfigure(mistake)
    settings.LOCKOUT_ON_ERROR = on_error
    caplog.set_level(logging.WARNING, logger="lockout_axes.client")
    _, warning_names, verdict_lost = MISCONFIGURATIONS[mistake]
    expected = status_without_verdict if verdict_lost else 302
    for page in LOGIN_PAGES:
        client.logout()
        assert page.post(client, USERNAME, PASSWORD).status_code == expected, page.name
    warnings = [r.getMessage() for r in caplog.records if r.name == "lockout_axes.client"]
    if verdict_lost:
        [warning] = warnings
        assert warning_names in warning
    else:
        assert warnings == []
