"""Device cookies on the Climweb-like site (LOCKOUT_DEVICE_COOKIE): a browser that logged in
keeps the service's device token in a Secure, HttpOnly, SameSite=Lax cookie, and logs in while
strangers keep its username locked out (with Climweb's settings every login is from 0.0.0.0,
so the strangers' lock is on every login of the username); a browser without the cookie, with a
forged one or with another user's, is refused."""

import logging

import pytest
from django.core.cache import cache
from django.test import Client

from lockout_axes import devices
from lockout_tests.climweb_site.conftest import PASSWORD, USERNAME
from lockout_tests.climweb_site.support import LOGIN_PAGES

COOKIE = "login_device"
# The session's service issues tokens valid 30 days (services.py).
THIRTY_DAYS = 30 * 24 * 3600

pages = pytest.mark.parametrize("page", LOGIN_PAGES, ids=lambda page: page.name)


@pytest.fixture
def device_cookies(settings):
    settings.LOCKOUT_DEVICE_COOKIE = COOKIE


def browser_with(token):
    """A browser (no session) that kept the device cookie ``token``."""
    browser = Client()
    browser.cookies[COOKIE] = token
    return browser


@pytest.mark.django_db
@pages
def test_the_browser_with_the_device_cookie_logs_in_while_strangers_lock_out_its_username(
    device_cookies, django_user_model, operator, page
):
    django_user_model.objects.create_superuser("other", "other@example.org", PASSWORD)
    logged_in = page.post(Client(), USERNAME, PASSWORD)
    assert logged_in.status_code == 302
    cookie = logged_in.cookies[COOKIE]
    assert cookie.value
    assert (cookie["secure"], cookie["httponly"], cookie["samesite"]) == (True, True, "Lax")
    assert cookie["max-age"] == THIRTY_DAYS
    others_token = page.post(Client(), "other", PASSWORD).cookies[COOKIE].value

    for _ in range(3):
        refused = page.post(Client(), USERNAME, "stranger's guess")
    assert refused.status_code == 429
    assert page.post(Client(), USERNAME, PASSWORD).status_code == 429, "a browser without"

    again = page.post(browser_with(cookie.value), USERNAME, PASSWORD)
    assert again.status_code == 302
    assert again.cookies[COOKIE].value not in ("", cookie.value), "a new token for the device"

    claims, _, mac = cookie.value.rpartition(".")
    forged = f"{claims}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    for token in (forged, others_token, "garbage"):
        cache.clear()  # allauth's own limit, 5 failures in 5 minutes, would refuse first
        assert page.post(browser_with(token), USERNAME, PASSWORD).status_code == 429, token


@pytest.mark.django_db
def test_the_device_cookie_carries_its_own_count(device_cookies, operator):
    """The device's own failures lock the device, under Climweb's limit of 3."""
    page = LOGIN_PAGES[0]
    token = page.post(Client(), USERNAME, PASSWORD).cookies[COOKIE].value
    statuses = [page.post(browser_with(token), USERNAME, "typo").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert page.post(browser_with(token), USERNAME, PASSWORD).status_code == 429
    assert page.post(Client(), USERNAME, PASSWORD).status_code == 302, "the username is not locked"


@pytest.mark.django_db
def test_without_the_setting_no_cookie_is_set(operator):
    logged_in = LOGIN_PAGES[0].post(Client(), USERNAME, PASSWORD)
    assert logged_in.status_code == 302
    assert COOKIE not in logged_in.cookies


@pytest.mark.django_db
def test_a_service_without_device_tokens_is_told_once(
    settings, device_cookies, api_token_service, operator, caplog, monkeypatch
):
    settings.LOCKOUT_URL = api_token_service.url
    settings.LOCKOUT_API_TOKEN = api_token_service.api_token
    settings.LOCKOUT_ADMIN_TOKEN = api_token_service.admin_token
    monkeypatch.setattr(devices, "_told_no_tokens", False)
    caplog.set_level(logging.WARNING, logger="lockout_axes.devices")
    for _ in range(2):
        logged_in = LOGIN_PAGES[0].post(Client(), USERNAME, PASSWORD)
        assert logged_in.status_code == 302
        assert COOKIE not in logged_in.cookies
    [warning] = [record.getMessage() for record in caplog.records]
    assert "[devices] secret" in warning
