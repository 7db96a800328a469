"""Unlock emails on the Climweb-like site (LOCKOUT_UNLOCK_EMAIL = True), with Django's locmem
email backend and the real service: the user of a locked username gets one email per lockout;
its link asks before it unlocks, unlocks the username once, and leaves the lock of the address
that guessed; the lockout page is the same whether or not the username has a user with an
email address. The clients come from distinct addresses (support.from_ip), and the policy locks
addresses and usernames apart, so that an address's lock and a username's can be told apart."""

import re

import pytest
from django.test import Client

from lockout_axes import client
from lockout_tests.climweb_site.conftest import PASSWORD, USERNAME
from lockout_tests.climweb_site.support import BEHIND_TWO_PROXIES, LOGIN_PAGES, from_ip

PAGE = LOGIN_PAGES[0]
LINK = re.compile(r"http://testserver(/account/lockout/unlock/[^/\s]+/)")


@pytest.fixture
def unlock_emails(settings):
    settings.LOCKOUT_UNLOCK_EMAIL = True
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = BEHIND_TWO_PROXIES
    settings.AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]


def lock_out(username, ip, failures=3):
    """``failures`` wrong passwords for ``username`` from ``ip``; the last answer."""
    for _ in range(failures):
        response = PAGE.post(Client(), username, "guess", **from_ip(ip))
    return response


def log_in(ip):
    return PAGE.post(Client(), USERNAME, PASSWORD, **from_ip(ip)).status_code


def records():
    return {
        tuple(sorted(record["parameters"].items())): record["locked"]
        for record in client.iter_attempts()
    }


@pytest.mark.django_db
def test_the_link_of_the_one_email_unlocks_the_username_once(unlock_emails, operator, mailoutbox):
    assert lock_out(USERNAME, "203.0.113.1", failures=5).status_code == 429
    [email] = mailoutbox
    assert email.to == ["operator@example.org"]
    assert email.subject == "Your account on testserver is locked after failed logins"
    link = LINK.search(email.body).group(1)

    asked = Client().get(link)
    assert asked.status_code == 200
    assert b"Unlock my account" in asked.content
    assert log_in("203.0.113.2") == 429, "a GET (a mail scanner's) unlocks nothing"

    unlocked = Client().post(link)
    assert unlocked.status_code == 200
    assert b"Your account is unlocked" in unlocked.content
    after = records()
    assert after[(("ip", "203.0.113.1"),)] is True, "the address's lock stays"
    assert not [identity for identity in after if dict(identity).get("username")]
    assert log_in("203.0.113.1") == 429
    assert log_in("203.0.113.2") == 302

    assert lock_out(USERNAME, "203.0.113.3").status_code == 429
    assert len(mailoutbox) == 2, "a lockout after the unlock mails a new link"
    used_again = Client().post(link)
    assert used_again.status_code == 400
    assert b"This link does not work" in used_again.content
    assert log_in("203.0.113.4") == 429, "the used link unlocked nothing"


@pytest.mark.django_db
def test_the_lockout_page_tells_nothing_of_the_username(
    unlock_emails, django_user_model, operator, mailoutbox
):
    django_user_model.objects.create_user("no-email", "", PASSWORD)
    django_user_model.objects.create_user("inactive", "inactive@example.org", is_active=False)
    pages = {
        username: lock_out(username, f"203.0.113.{n}")
        for n, username in enumerate([USERNAME, "no-email", "inactive", "nobody"], start=10)
    }
    assert {(page.status_code, page.content) for page in pages.values()} == {
        (pages[USERNAME].status_code, pages[USERNAME].content)
    }
    assert [email.to for email in mailoutbox] == [["operator@example.org"]]


@pytest.mark.django_db
def test_no_email_for_an_address_lock_or_without_the_setting(settings, operator, mailoutbox):
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = BEHIND_TWO_PROXIES
    assert lock_out(USERNAME, "203.0.113.20").status_code == 429, "the setting is off"
    settings.LOCKOUT_UNLOCK_EMAIL = True
    settings.AXES_LOCKOUT_PARAMETERS = ["ip_address"]
    assert lock_out(USERNAME, "203.0.113.21").status_code == 429, "the address's lock alone"
    assert mailoutbox == []


@pytest.mark.django_db
def test_a_forged_link_unlocks_nothing(unlock_emails, operator, mailoutbox):
    lock_out(USERNAME, "203.0.113.30")
    link = LINK.search(mailoutbox[0].body).group(1)
    forged = link[:-3] + ("A" if link[-3] != "A" else "B") + link[-2:]
    assert Client().post(forged).status_code == 400
    assert log_in("203.0.113.31") == 429


@pytest.mark.django_db
def test_a_service_without_unlock_tokens_mails_nothing_and_says_so_once_per_lockout(
    settings, unlock_emails, api_token_service, operator, mailoutbox, caplog
):
    settings.LOCKOUT_URL = api_token_service.url
    settings.LOCKOUT_API_TOKEN = api_token_service.api_token
    settings.LOCKOUT_ADMIN_TOKEN = api_token_service.admin_token
    try:
        assert lock_out(USERNAME, "203.0.113.40", failures=5).status_code == 429
    finally:
        client.admin_call("DELETE", "/v1/attempts", all="true")
    assert mailoutbox == []
    [error] = [r.getMessage() for r in caplog.records if r.name == "lockout_axes.unlock"]
    assert "devices.secret" in error


@pytest.mark.django_db
def test_a_link_redeemed_during_an_outage_still_works_after(
    settings, unlock_emails, operator, mailoutbox, closed_port
):
    lock_out(USERNAME, "203.0.113.50")
    link = LINK.search(mailoutbox[0].body).group(1)
    service_url, settings.LOCKOUT_URL = settings.LOCKOUT_URL, closed_port
    down = Client().post(link)
    assert down.status_code == 503
    assert b"Unlocking is temporarily unavailable" in down.content
    settings.LOCKOUT_URL = service_url
    assert Client().post(link).status_code == 200
    assert log_in("203.0.113.51") == 302
