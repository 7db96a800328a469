"""The admin's "Access attempts" (lockout_axes.admin) over records made in the service, with
Django's test client: what a row shows, escaping, service errors, scopes, lockout's own
permissions and the delete action; and in a real headless Chromium for an operator's whole
round, which saves docs/django-admin.png when LOCKOUT_SCREENSHOTS=1.
"""

import os
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.test import override_settings
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.html import escape, strip_tags
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from lockout_axes.records import Identity
from lockout_tests import services
from lockout_tests.admin_support import (
    ACCESS_FAILURES,
    ACCESS_LOGS,
    ALICE,
    ATTEMPT,
    ATTEMPTS,
    BOB,
    BROWSER,
    CAROL,
    FAILURE_LIMIT,
    LOGIN_PATH,
    backdate,
    chromium,
    fail,
    follow,
    identities,
    messages_of,
    record_url,
    staff_user,
)
from lockout_tests.support import TEST_SCOPE, records
from lockout_tests.upstream import REPO

pytestmark = pytest.mark.urls("lockout_tests.admin_urls")

CHANGELIST = ATTEMPTS
SCREENSHOT = REPO / "docs" / "django-admin.png"


def cell_text(cells, column):
    """The text of a row's cell of ``column``, as the page shows it."""
    [cell] = [cell for cell in cells if re.search(rf'class="field-{column}[ "]', cell)]
    return strip_tags(cell)


def listed(response):
    """The records a list page shows: each identity's failures and status."""
    return {
        record.identity: (record.failures, cell_text(cells, "status"))
        for record, cells in zip(
            response.context["cl"].result_list, response.context["results"], strict=True
        )
    }


def delete_action(*selected, confirmed):
    form = {"action": "delete_selected", "_selected_action": [item.pk for item in selected]}
    return form | ({"post": "yes"} if confirmed else {"index": "0"})


def test_list_shows_the_services_records(admin_client):
    fail(ALICE.ip, ALICE.username, times=FAILURE_LIMIT)
    fail(BOB.ip, BOB.username, times=2)
    fail("192.0.2.1", "dave", combinations=[["ip"]])

    response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert listed(response) == {
        ALICE: (FAILURE_LIMIT, "Locked out, 30\xa0minutes left"),
        BOB: (2, "8 attempts remaining"),
        Identity(ip="192.0.2.1"): (1, "9 attempts remaining"),
    }
    page = response.content.decode()
    for text in ("Select access attempt to view", BROWSER, LOGIN_PATH, "203.0.113.9", "alice"):
        assert text in page
    assert "3 access attempts" in page


def test_status_without_an_integer_failure_limit(admin_client):
    fail(BOB.ip, BOB.username)

    with override_settings(AXES_FAILURE_LIMIT=lambda request, credentials: FAILURE_LIMIT):
        response = admin_client.get(reverse(CHANGELIST))

    assert listed(response) == {BOB: (1, "Not locked out")}


@pytest.mark.parametrize("use_tz", [True, False])
def test_failure_times_are_shown_in_the_sites_time_zone(admin_client, use_tz):
    fail(BOB.ip, BOB.username)
    [record] = records()
    failed_at = parse_datetime(record["last_failure"]).astimezone(ZoneInfo("Asia/Kolkata"))

    with override_settings(USE_TZ=use_tz, TIME_ZONE="Asia/Kolkata"):
        page = admin_client.get(reverse(CHANGELIST)).content.decode()
        expected = date_format(failed_at.replace(tzinfo=None), "DATETIME_FORMAT")

    assert '<th class="field-attempt_time nowrap"><a href="' in page
    assert f'">{expected}</a></th>' in page


def test_usernames_user_agents_and_paths_are_escaped(admin_client):
    script = "<script>alert('x')</script>"
    fail("192.0.2.5", script, user_agent=f"<b>{script}</b>", path="/login/<i>x</i>")
    hostile = Identity(ip="192.0.2.5", username=script)

    listing = admin_client.get(reverse(CHANGELIST)).content.decode()
    confirmation = admin_client.post(
        reverse(CHANGELIST), delete_action(hostile, confirmed=False)
    ).content.decode()
    record_page = admin_client.get(record_url(ATTEMPT, hostile)).content.decode()
    log_page = admin_client.get(reverse(ACCESS_LOGS)).content.decode()

    for page in (listing, confirmation, record_page, log_page):
        assert script not in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    for page in (listing, record_page, log_page):
        assert "<b>" not in page and "<i>" not in page
        assert "/login/&lt;i&gt;x&lt;/i&gt;" in page


def test_filters_by_ip_username_and_lock(admin_client):
    fail(BOB.ip, BOB.username)
    fail(CAROL.ip, CAROL.username, times=FAILURE_LIMIT)
    fail(ALICE.ip, ALICE.username)
    fail(ALICE.ip, "bob")

    def shown(**query):
        return set(listed(admin_client.get(reverse(CHANGELIST), query)))

    assert shown(ip="198.51.100.7") == {BOB, CAROL}
    assert shown(username="bob") == {BOB, Identity(ip=ALICE.ip, username="bob")}
    assert shown(ip=" 198.51.100.7 ", username="bob") == {BOB}
    assert shown(locked_out="yes") == {CAROL}
    assert shown(locked_out="no") == {BOB, ALICE, Identity(ip=ALICE.ip, username="bob")}
    assert shown(ip="203.0.113.9", locked_out="yes") == set()


def test_a_filter_the_service_refuses_is_an_error_message(admin_client):
    response = admin_client.get(reverse(CHANGELIST), {"ip": "not-an-ip"})

    assert response.status_code == 200
    assert listed(response) == {}
    [message] = messages_of(response)
    assert message.startswith("Could not list the access attempts:")
    assert "not a valid IP address" in message


def test_an_unavailable_service_is_an_error_message(admin_client):
    with override_settings(LOCKOUT_URL=f"http://127.0.0.1:{services.free_port()}"):
        response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    [message] = messages_of(response)
    assert message.startswith("Could not list the access attempts:")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (ATTEMPTS, "Could not list the access attempts: "),
        (ACCESS_LOGS, "Could not list the access logs: "),
        (ACCESS_FAILURES, "Could not list the access failures: "),
        (ATTEMPT, "Could not read the access attempt: "),
    ],
)
def test_a_missing_admin_token_is_an_error_message_on_every_page(admin_client, name, error):
    fail(BOB.ip, BOB.username)
    url = record_url(name, BOB) if name == ATTEMPT else reverse(name)

    with override_settings(LOCKOUT_ADMIN_TOKEN=None):
        response = admin_client.get(url, follow=True)

    assert response.status_code == 200
    # A record's page sends back to the list, which says it too.
    message, *_ = messages_of(response)
    assert message.startswith(error) and "LOCKOUT_ADMIN_TOKEN" in message


def test_records_of_other_scopes_are_neither_listed_nor_deleted(admin_client):
    fail(ALICE.ip, ALICE.username)
    with override_settings(LOCKOUT_SCOPE=TEST_SCOPE):
        fail(BOB.ip, BOB.username)
        fail(ALICE.ip, ALICE.username)

        assert set(listed(admin_client.get(reverse(CHANGELIST)))) == {ALICE, BOB}
        admin_client.post(reverse(CHANGELIST), delete_action(ALICE, confirmed=True))
        assert identities() == {BOB}

    assert identities() == {ALICE}


def test_staff_without_permissions_are_refused(client, django_user_model):
    fail(BOB.ip, BOB.username)
    client.force_login(staff_user(django_user_model))

    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.post(reverse(CHANGELIST), delete_action(BOB, confirmed=True)).status_code == 403
    assert reverse(CHANGELIST) not in client.get("/dj-ad-admin/").content.decode()
    assert identities() == {BOB}


def test_staff_with_view_permission_see_the_list_but_cannot_delete(client, django_user_model):
    fail(BOB.ip, BOB.username)
    client.force_login(staff_user(django_user_model, "lockout_axes.view_accessattempt"))

    response = client.get(reverse(CHANGELIST))
    assert set(listed(response)) == {BOB}
    assert response.context["action_form"] is None
    assert "action-select" not in response.content.decode()

    response = client.post(reverse(CHANGELIST), delete_action(BOB, confirmed=True), follow=True)
    assert messages_of(response) == ["No action selected."]
    assert identities() == {BOB}


def test_staff_with_view_and_delete_permissions_delete(client, django_user_model):
    fail(BOB.ip, BOB.username)
    client.force_login(
        staff_user(
            django_user_model,
            "lockout_axes.view_accessattempt",
            "lockout_axes.delete_accessattempt",
        )
    )

    client.post(reverse(CHANGELIST), delete_action(BOB, confirmed=True))

    assert identities() == set()


def test_the_delete_action_confirms_on_djangos_page_first(admin_client):
    for identity in (ALICE, BOB, CAROL):
        fail(identity.ip, identity.username)

    response = admin_client.post(
        reverse(CHANGELIST) + "?ip=198.51.100.7", delete_action(ALICE, BOB, confirmed=False)
    )

    assert response.status_code == 200
    assert "admin/delete_selected_confirmation.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert "Are you sure you want to delete the selected access attempts?" in page
    assert "<li>Access attempt: IP 203.0.113.9, username alice</li>" in page
    assert "<li>Access attempt: IP 198.51.100.7, username bob</li>" in page
    assert "carol" not in page
    assert page.count('name="_selected_action"') == 2
    assert f'value="{escape(ALICE.pk)}"' in page
    assert identities() == {ALICE, BOB, CAROL}


def test_confirming_deletes_exactly_the_selected_records(admin_client):
    both = [["ip", "username"], ["ip"]]
    fail(ALICE.ip, ALICE.username, combinations=both)
    fail(BOB.ip, BOB.username, combinations=both)
    fail(CAROL.ip, CAROL.username, combinations=both)
    url = reverse(CHANGELIST) + "?status=&username="

    response = admin_client.post(url, delete_action(ALICE, BOB, confirmed=True))

    assert response.status_code == 302 and response.url == url
    assert messages_of(admin_client.get(url)) == ["Successfully deleted 2 access attempts."]
    assert identities() == {CAROL, Identity(ip=ALICE.ip), Identity(ip=BOB.ip)}
    logged = LogEntry.objects.filter(action_flag=DELETION, content_type__model="accessattempt")
    assert sorted(logged.values_list("object_repr", flat=True)) == [
        "IP 198.51.100.7, username bob",
        "IP 203.0.113.9, username alice",
    ]


def test_a_large_selection_is_deleted_in_several_requests(admin_client):
    long_agent = "A" * 255
    selected = [Identity(ip=f"10.0.{n // 250}.{n % 250}", user_agent=long_agent) for n in range(80)]
    for identity in selected:
        fail(identity.ip, user_agent=long_agent, combinations=[["ip", "user_agent"]])

    response = admin_client.post(
        reverse(CHANGELIST), delete_action(*selected, confirmed=True), follow=True
    )

    assert messages_of(response) == ["Successfully deleted 80 access attempts."]
    assert identities() == set()


def test_an_action_needs_a_selection_and_a_valid_one(admin_client):
    response = admin_client.post(reverse(CHANGELIST), {"action": "delete_selected"}, follow=True)
    assert messages_of(response) == [
        "Items must be selected in order to perform actions on them. No items have been changed."
    ]

    forged = {"action": "delete_selected", "_selected_action": '{"ip": 1}'}
    assert admin_client.post(reverse(CHANGELIST), forged).status_code == 400


def texts(browser, column):
    return [
        cell.text
        for cell in browser.find_elements(By.CSS_SELECTOR, f"#result_list .field-{column}")
    ]


@pytest.mark.django_db(transaction=True)
def test_an_operator_sorts_searches_and_deletes_in_chromium(
    live_server, django_user_model, redis_url, lockout_service
):
    django_user_model.objects.create_superuser("operator", "operator@example.com", "s3cret-pw")
    erin = Identity(ip=BOB.ip, username="erin")
    fail(BOB.ip, BOB.username, times=3)
    fail(CAROL.ip, CAROL.username, user_agent="curl/8.5.0")
    fail(erin.ip, erin.username, times=2)
    fail("192.0.2.44", "dave", times=6, combinations=[["ip", "username"], ["ip"]])
    for identity in identities():
        backdate(redis_url, lockout_service, identity, timedelta(minutes=5))
    fail(ALICE.ip, ALICE.username, times=FAILURE_LIMIT)
    before = identities()

    with chromium() as browser:
        browser.get(f"{live_server.url}/dj-ad-admin/")
        browser.find_element(By.ID, "id_username").send_keys("operator")
        browser.find_element(By.ID, "id_password").send_keys("s3cret-pw")
        follow(browser, browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
        follow(browser, browser.find_element(By.LINK_TEXT, "Access attempts"))

        # Newest first: alice failed last.
        assert len(texts(browser, "username")) == len(before) == 6
        assert texts(browser, "username")[0] == "alice"
        assert "Locked out, 30 minutes left" in texts(browser, "status")[0]
        header = browser.find_element(By.CSS_SELECTOR, "#result_list th.column-attempt_time")
        assert "sorted descending" in header.get_attribute("class")
        if os.environ.get("LOCKOUT_SCREENSHOTS") == "1":
            SCREENSHOT.write_bytes(browser.get_screenshot_as_png())

        follow(browser, browser.find_element(By.CSS_SELECTOR, "th.column-failures .text a"))
        assert [int(text) for text in texts(browser, "failures")] == [1, 2, 3, 6, 6, 10]
        follow(browser, browser.find_element(By.CSS_SELECTOR, "th.column-failures .toggle"))
        assert [int(text) for text in texts(browser, "failures")] == [10, 6, 6, 3, 2, 1]

        browser.find_element(By.ID, "searchbar").send_keys("198.51.100")
        follow(browser, browser.find_element(By.CSS_SELECTOR, "#changelist-search [type=submit]"))
        assert texts(browser, "username") == ["bob", "erin", "carol"]
        for row in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"):
            if row.find_element(By.CLASS_NAME, "field-username").text in ("bob", "carol"):
                row.find_element(By.CLASS_NAME, "action-select").click()
        assert browser.find_element(By.CLASS_NAME, "action-counter").text == "2 of 3 selected"
        Select(browser.find_element(By.NAME, "action")).select_by_visible_text(
            "Delete selected access attempts"
        )
        follow(
            browser, browser.find_element(By.CSS_SELECTOR, "#changelist-form button[name=index]")
        )

        confirmation = browser.find_element(By.ID, "content").text
        assert "Are you sure you want to delete the selected access attempts?" in confirmation
        assert "Access attempt: IP 198.51.100.7, username bob" in confirmation
        assert "Access attempt: IP 198.51.100.7, username carol" in confirmation
        assert "erin" not in confirmation
        follow(browser, browser.find_element(By.CSS_SELECTOR, "#content form [type=submit]"))

        message = browser.find_element(By.CSS_SELECTOR, ".messagelist .success").text
        assert message == "Successfully deleted 2 access attempts."
        assert browser.find_element(By.ID, "searchbar").get_attribute("value") == "198.51.100"
        assert texts(browser, "username") == ["erin"]

        follow(browser, browser.find_element(By.CSS_SELECTOR, "#result_list .field-attempt_time a"))
        fields = browser.find_element(By.ID, "record-fields").text
        assert "Username:\nerin" in fields and "Failures:\n2" in fields
        follow(browser, browser.find_element(By.CLASS_NAME, "deletelink"))
        assert (
            'delete the access attempt "IP 198.51.100.7, username erin"'
            in browser.find_element(By.ID, "content").text
        )
        follow(browser, browser.find_element(By.CSS_SELECTOR, "#content form [type=submit]"))
        message = browser.find_element(By.CSS_SELECTOR, ".messagelist .success").text
        assert (
            message
            == "The access attempt “IP 198.51.100.7, username erin” was deleted successfully."
        )

        # The access log, as Axes' "Access failures": one client's failures, found by search.
        follow(browser, browser.find_element(By.LINK_TEXT, "Access failures"))
        browser.find_element(By.ID, "searchbar").send_keys("192.0.2.44")
        follow(browser, browser.find_element(By.CSS_SELECTOR, "#changelist-search [type=submit]"))
        assert texts(browser, "username") == ["dave"] * 6
        assert set(texts(browser, "outcome")) == {"Failure"}

    assert identities() == before - {BOB, CAROL, erin}
