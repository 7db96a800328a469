"""Logins on the Climweb-like site's three login pages: locked at Climweb's third failure with
its own lockout page, and, while the service is unavailable, the 503 of
lockout_axes/unavailable.html (LOCKOUT_ON_ERROR = "deny") or the password's own verdict
("allow")."""

import pytest

from lockout_axes import client
from lockout_tests.climweb_site.conftest import PASSWORD, USERNAME
from lockout_tests.climweb_site.support import LOGIN_PAGES

pages = pytest.mark.parametrize("page", LOGIN_PAGES, ids=lambda page: page.name)


@pytest.mark.django_db
@pages
def test_the_third_failure_locks_with_climwebs_lockout_page(client, operator, page):
    statuses = [page.post(client, USERNAME, "wrong").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    locked = page.post(client, USERNAME, PASSWORD)
    assert locked.status_code == 429, "the right password too, while locked"
    assert b"Climweb: too many failed logins" in locked.content
    [record] = client_records()
    assert (record["parameters"]["username"], record["failures"]) == (USERNAME, 4)


@pytest.mark.django_db
@pages
def test_a_success_resets_the_count(client, operator, page):
    page.post(client, USERNAME, "wrong")
    page.post(client, USERNAME, "wrong")
    assert page.post(client, USERNAME, PASSWORD).status_code == 302
    assert client_records() == []


@pytest.mark.django_db
@pages
def test_deny_answers_503_while_the_service_is_unavailable(
    settings, client, operator, page, closed_port, lockout_signals
):
    settings.LOCKOUT_URL = closed_port
    for password in (PASSWORD, "wrong"):
        response = page.post(client, USERNAME, password)
        assert response.status_code == 503
        assert b"Logging in is temporarily unavailable" in response.content
    assert lockout_signals == []


@pytest.mark.django_db
@pages
def test_allow_lets_the_password_decide_while_the_service_is_unavailable(
    settings, client, operator, page, closed_port
):
    settings.LOCKOUT_URL = closed_port
    settings.LOCKOUT_ON_ERROR = "allow"
    assert [page.post(client, USERNAME, "wrong").status_code for _ in range(4)] == [200] * 4
    assert page.post(client, USERNAME, PASSWORD).status_code == 302


def client_records():
    return list(client.iter_attempts())
