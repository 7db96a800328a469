"""The "Access logs" and "Access failures" pages (Axes' names), read-only, from the service's
access log: newest first, searched, filtered by outcome, date, IP and username, paged with a
next page that is never empty."""

from datetime import timedelta

import pytest
from django.urls import reverse

from lockout_axes.admin.logs import AccessLogAdmin
from lockout_tests.admin_support import (
    ACCESS_FAILURES,
    ACCESS_LOGS,
    ALICE,
    BOB,
    FAILURE_LIMIT,
    current_page,
    fail,
    local_now,
    messages_of,
    refuse,
    shown,
    succeed,
)

pytestmark = pytest.mark.urls("lockout_tests.admin_urls")


def entries(admin_client, page, **query):
    """(username, outcome) of each entry the page shows, in its order."""
    response = admin_client.get(reverse(page), query)
    assert response.status_code == 200
    return [(entry.username, entry.outcome) for entry in shown(response)]


# The test client's login, logged before each test's own entries, as any success is.
ADMIN_LOGIN = ("admin", "success")


@pytest.fixture
def logged(admin_client):
    """After the admin's login: alice, 10 failures, locked, then refused; bob, a failure, then a
    success."""
    fail(ALICE.ip, ALICE.username, times=FAILURE_LIMIT)
    refuse(ALICE.ip, ALICE.username)
    fail(BOB.ip, BOB.username, user_agent="curl/8.5.0")
    succeed(BOB.ip, BOB.username)


def test_access_logs_list_every_outcome_newest_first(admin_client, logged):
    response = admin_client.get(reverse(ACCESS_LOGS))

    assert [(entry.username, entry.outcome) for entry in shown(response)] == [
        ("bob", "success"),
        ("bob", "failure"),
        ("alice", "refused"),
        *[("alice", "failure")] * FAILURE_LIMIT,
        ADMIN_LOGIN,
    ]
    page = response.content.decode()
    assert "14 access logs on this page" in page
    assert "Refused (locked out)" in page and "curl/8.5.0" in page
    assert 'class="action-checkbox' not in page


def test_access_failures_are_the_failures_and_refusals(admin_client, logged):
    assert entries(admin_client, ACCESS_FAILURES) == [
        ("bob", "failure"),
        ("alice", "refused"),
        *[("alice", "failure")] * FAILURE_LIMIT,
    ]
    assert entries(admin_client, ACCESS_FAILURES, outcome="refused") == [("alice", "refused")]
    # A success is no failure, whatever the URL asks.
    response = admin_client.get(reverse(ACCESS_FAILURES), {"outcome": "success"})
    assert len(shown(response)) == FAILURE_LIMIT + 2
    assert messages_of(response) == ["Filter ignored: outcome: 'success' is not one of its choices"]


def test_logs_filter_by_outcome_ip_username_and_search(admin_client, logged):
    assert entries(admin_client, ACCESS_LOGS, outcome="success") == [
        ("bob", "success"),
        ADMIN_LOGIN,
    ]
    assert entries(admin_client, ACCESS_LOGS, outcome="refused") == [("alice", "refused")]
    assert entries(admin_client, ACCESS_LOGS, ip=BOB.ip) == [("bob", "success"), ("bob", "failure")]
    assert entries(admin_client, ACCESS_LOGS, username="alice", outcome="refused") == [
        ("alice", "refused")
    ]
    assert entries(admin_client, ACCESS_LOGS, q="CURL") == [("bob", "failure")]
    assert entries(admin_client, ACCESS_FAILURES, q="198.51.100") == [("bob", "failure")]
    assert entries(admin_client, ACCESS_LOGS, q="nobody") == []


def test_logs_filter_by_date(admin_client, logged):
    tomorrow = (local_now() + timedelta(days=1)).date().isoformat()
    today = local_now().date().isoformat()

    assert len(entries(admin_client, ACCESS_LOGS, attempt_time__gte=today)) == FAILURE_LIMIT + 4
    assert entries(admin_client, ACCESS_LOGS, attempt_time__gte=tomorrow) == []
    assert entries(admin_client, ACCESS_FAILURES, attempt_time__lt=today) == []


def test_log_pages_hold_list_per_page_and_next_is_never_empty(admin_client, monkeypatch, logged):
    monkeypatch.setattr(AccessLogAdmin, "list_per_page", 5)

    sizes, page = [], 1
    while True:
        response = admin_client.get(reverse(ACCESS_LOGS), {"p": page})
        sizes.append(len(shown(response)))
        content = response.content.decode()
        if f'href="?p={page + 1}"' not in content:
            break
        page += 1

    assert sizes == [5, 5, 4]
    assert current_page(content) == 3
    assert "4 access logs on this page" in content


def test_a_service_error_on_a_log_page_is_a_message(admin_client):
    response = admin_client.get(reverse(ACCESS_LOGS), {"ip": "not-an-ip"})

    assert response.status_code == 200
    [message] = messages_of(response)
    assert message.startswith("Could not list the access logs: ")
