"""The "Access attempts" list as Axes' admin has it, and past it: newest first, sorted by
Django's ``o=``, searched with ``q=``, filtered by the date of the latest failure and by lock,
paged exactly, each record on a page of its own. With Django's test client, over records made
in a real ``lockout serve``."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.urls import reverse

from lockout_axes import client
from lockout_axes.admin.attempts import AccessAttemptAdmin
from lockout_axes.records import Identity
from lockout_tests.admin_support import (
    ALICE,
    ATTEMPT,
    ATTEMPT_DELETE,
    ATTEMPTS,
    BOB,
    BROWSER,
    CAROL,
    FAILURE_LIMIT,
    LOGIN_PATH,
    backdate,
    clone_record,
    current_page,
    fail,
    identities,
    local_now,
    login_body,
    messages_of,
    page_links,
    record_url,
    refuse,
    shown,
    shown_identities,
    sort_link,
)

pytestmark = pytest.mark.urls("lockout_tests.admin_urls")

# Locked by no other test: the events of a record's identity outlive the record.
MALLORY = Identity(ip="203.0.113.66", username="mallory")


def get(admin_client, **query):
    return admin_client.get(reverse(ATTEMPTS), query)


def make_records(counts):
    """One record per (username, failures), made in this order: the last is the newest."""
    made = []
    for number, (username, failures) in enumerate(counts, start=1):
        identity = Identity(ip=f"192.0.2.{number}", username=username)
        fail(identity.ip, identity.username, times=failures)
        made.append(identity)
    return made


@pytest.fixture
def aged(redis_url, lockout_service):
    """Records whose latest failures are these ages, oldest made first; the newest is now."""

    def make(ages):
        made = make_records([(f"user{n}", n + 1) for n in range(len(ages))])
        for identity, age in zip(made, ages, strict=True):
            if age:
                backdate(redis_url, lockout_service, identity, age)
        return made

    return make


def test_newest_first_by_default(admin_client, aged):
    erin, frank, grace, heidi = aged(
        [timedelta(days=3), timedelta(hours=1), timedelta(days=2), timedelta(0)]
    )

    response = get(admin_client)

    assert shown_identities(response) == [heidi, frank, grace, erin]
    [header] = [
        h for h in response.context["result_headers"] if "attempt_time" in h["class_attrib"]
    ]
    assert header["sorted"] and not header["ascending"]
    assert "sorted descending" in header["class_attrib"]
    assert shown_identities(get(admin_client, o="1")) == [erin, grace, frank, heidi]
    assert shown_identities(get(admin_client, o="-1")) == [heidi, frank, grace, erin]


def test_sorted_by_failures_with_djangos_order_parameter(admin_client):
    make_records([("erin", 2), ("frank", 5), ("grace", 1), ("heidi", 3)])

    def failures(**query):
        return [record.failures for record in shown(get(admin_client, **query))]

    assert failures(o="6") == [1, 2, 3, 5]
    assert failures(o="-6") == [5, 3, 2, 1]
    # The first sortable column named wins, as the service sorts by one.
    assert failures(o="3.-6.1") == [5, 3, 2, 1]
    # Columns that are not sortable, unknown numbers and garbage: newest first.
    for ignored in ("3", "99", "x", "-"):
        response = get(admin_client, o=ignored)
        assert response.context["cl"].ordering == (1, True)


def test_sortable_headers_link_as_djangos(admin_client):
    fail("192.0.2.1", "x")
    response = get(admin_client, o="-6", q="x")
    headers = {
        header["class_attrib"].split("column-")[1].split()[0].rstrip('"'): header
        for header in response.context["result_headers"]
        if "column-" in header["class_attrib"]
    }

    assert [name for name, h in headers.items() if h["sortable"]] == ["attempt_time", "failures"]
    assert headers["failures"]["sorted"] and not headers["failures"]["ascending"]
    assert headers["failures"]["url_toggle"] == "?o=6&q=x"
    assert headers["attempt_time"]["url_primary"] == "?o=1&q=x"
    assert not headers["attempt_time"]["sorted"]
    page = response.content.decode()
    assert 'class="sortable column-failures sorted descending"' in page
    assert sort_link(page, "Failures") == "?o=6&amp;q=x"


def test_search_matches_ip_username_user_agent_and_path(admin_client):
    fail(ALICE.ip, ALICE.username, user_agent="Mozilla/5.0 Firefox")
    fail(BOB.ip, BOB.username, user_agent="curl/8.5.0", path="/api/login/")
    fail(CAROL.ip, CAROL.username, user_agent="python-requests/2.32")

    def found(text):
        return set(shown_identities(get(admin_client, q=text)))

    assert found("203.0.113") == {ALICE}
    assert found("CAR") == {CAROL}
    assert found("curl") == {BOB}
    assert found("/api/") == {BOB}
    assert found("198.51.100.7") == {BOB, CAROL}
    assert found("nobody") == set()
    # Plain text: a pattern's characters match themselves.
    assert found("*") == set()
    page = get(admin_client, q="curl").content.decode()
    assert 'id="searchbar"' in page and 'value="curl"' in page


def test_date_filter_of_the_latest_failure(admin_client, aged):
    ages = [timedelta(0), timedelta(days=3), timedelta(days=6), timedelta(days=40)]
    ages += [timedelta(days=200), timedelta(days=400)]
    made = dict(zip(aged(ages), ages, strict=True))
    today = local_now().date()

    def made_on(keep):
        return {identity for identity, age in made.items() if keep((local_now() - age).date())}

    expected = {
        "Any date": set(made),
        "Today": made_on(lambda day: day == today),
        "Past 7 days": made_on(lambda day: day >= today - timedelta(days=7)),
        "This month": made_on(lambda day: (day.year, day.month) == (today.year, today.month)),
        "This year": made_on(lambda day: day.year == today.year),
    }
    cl = get(admin_client).context["cl"]
    [date_filter] = [spec for spec in cl.filter_specs if str(spec.title) == "attempt time"]
    links = {str(choice["display"]): choice for choice in date_filter.choices(cl)}
    assert list(links) == list(expected)
    assert links["Any date"]["selected"]
    assert len(expected["Today"]) == 1 and len(expected["Past 7 days"]) == 3

    for name, identities_then in expected.items():
        response = admin_client.get(reverse(ATTEMPTS) + links[name]["query_string"])
        assert set(shown_identities(response)) == identities_then, name
        cl = response.context["cl"]
        [date_filter] = [spec for spec in cl.filter_specs if str(spec.title) == "attempt time"]
        selected = [str(c["display"]) for c in date_filter.choices(cl) if c["selected"]]
        assert selected == [name]

    tomorrow = (today + timedelta(days=1)).isoformat()
    assert shown(get(admin_client, attempt_time__gte=tomorrow)) == []
    assert len(shown(get(admin_client, attempt_time__lt=today.isoformat()))) == 5


def test_an_unreadable_date_is_an_error_and_the_list_unfiltered(admin_client):
    fail(ALICE.ip, ALICE.username)

    response = get(admin_client, attempt_time__gte="yesterday")

    assert response.status_code == 200
    assert shown_identities(response) == [ALICE]
    assert messages_of(response) == ["Filter ignored: 'yesterday' is not a date"]


def test_locked_filter(admin_client):
    fail(ALICE.ip, ALICE.username, times=FAILURE_LIMIT)
    fail(BOB.ip, BOB.username, times=2)

    assert shown_identities(get(admin_client, locked_out="yes")) == [ALICE]
    assert shown_identities(get(admin_client, locked_out="no")) == [BOB]
    response = get(admin_client, locked_out="maybe")
    assert set(shown_identities(response)) == {ALICE, BOB}
    assert messages_of(response) == [
        "Filter ignored: locked_out: 'maybe' is not one of its choices"
    ]


def test_a_page_holds_exactly_list_per_page_and_next_is_never_empty(admin_client, monkeypatch):
    monkeypatch.setattr(AccessAttemptAdmin, "list_per_page", 3)
    made = make_records([(f"user{n}", 1) for n in range(7)])

    pages = [get(admin_client, p=str(number)) for number in (1, 2, 3)]

    assert [len(shown(page)) for page in pages] == [3, 3, 1]
    seen = [identity for page in pages for identity in shown_identities(page)]
    assert sorted(seen, key=str) == sorted(made, key=str)
    first = pages[0].content.decode()
    assert "7 access attempts" in first
    assert current_page(first) == 1
    assert page_links(first) == [2, 3]
    last = pages[2].content.decode()
    assert current_page(last) == 3 and "?p=4" not in last


def test_a_page_past_the_end_redirects_to_the_last_one(admin_client, monkeypatch):
    monkeypatch.setattr(AccessAttemptAdmin, "list_per_page", 2)
    make_records([("erin", 1), ("frank", 1), ("grace", 1)])

    response = get(admin_client, p="9", q="192.0.2")

    assert response.status_code == 302
    assert response.url == "?p=2&q=192.0.2"


def test_a_list_sorted_among_the_records_read_says_so(admin_client, redis_url, lockout_service):
    # More records than the service's views read (20,000, and about a batch of 1,000 more).
    many = Identity(ip="10.9.9.9", username="many")
    fail(many.ip, many.username)
    clone_record(redis_url, lockout_service, many, 25_000)

    response = get(admin_client)

    cl = response.context["cl"]
    assert len(shown(response)) == cl.list_per_page
    [message] = messages_of(response)
    scanned = int(message.split("among the ")[1].split(" ")[0])
    assert 20_000 <= scanned < 25_001
    assert cl.result_count <= scanned
    assert message.endswith(
        "Narrow the list to one IP address or username (a record's page links to them) to see "
        "all of its attempts."
    )
    # An exact username is read alone: complete.
    narrowed = get(admin_client, username="many-24999")
    assert shown_identities(narrowed) == [Identity(ip=many.ip, username="many-24999")]
    assert messages_of(narrowed) == []


def test_a_records_page_shows_every_field_its_events_and_its_access_log(admin_client):
    fail(MALLORY.ip, MALLORY.username, times=FAILURE_LIMIT, user_agent="curl/8.5.0", path="/x/")
    refuse(MALLORY.ip, MALLORY.username, user_agent="curl/8.5.0")
    fail(BOB.ip, BOB.username)

    listing = get(admin_client).content.decode()
    url = record_url(ATTEMPT, MALLORY)
    assert f'<th class="field-attempt_time nowrap"><a href="{url}">' in listing

    response = admin_client.get(url)

    assert response.status_code == 200
    fields = dict(response.context["fields"])
    assert fields["IP address"] == MALLORY.ip
    assert fields["Username"] == MALLORY.username
    # The refused attempt counts too.
    assert fields["Failures"] == FAILURE_LIMIT + 1
    assert fields["Status"].startswith("Locked out, ")
    assert fields["User agent of the latest failure"] == "curl/8.5.0"
    assert fields["Path of the latest failure"] == "/x/"
    assert fields["Latest failure (attempt time)"] >= fields["First failure"]
    assert [what for _, what, _ in response.context["events"]] == ["Locked out for 30\xa0minutes"]
    outcomes = [entry.outcome for entry in response.context["log_entries"]]
    assert outcomes == ["refused"] + ["failure"] * FAILURE_LIMIT
    assert {entry.username for entry in response.context["log_entries"]} == {"mallory"}
    page = response.content.decode()
    assert "Locked out for 30\xa0minutes" in page
    assert 'class="deletelink"' in page
    assert f'?ip={MALLORY.ip}"' in page and '?username=mallory"' in page


def test_a_device_tokens_record_and_a_would_be_lock_are_shown(admin_client):
    """A device token's own record (its parameters: username and device) and observe mode's
    would-be lock, as the service lists them."""
    alice = login_body(ALICE.ip, ALICE.username, BROWSER, LOGIN_PATH, [["ip", "username"]])
    token = client.login_call("/v1/success", alice)["device_token"]
    client.login_call("/v1/failure", {**alice, "device_token": token})
    bob = login_body(BOB.ip, BOB.username, BROWSER, LOGIN_PATH, [["ip", "username"]])
    for _ in range(FAILURE_LIMIT):
        client.login_call("/v1/failure", {**bob, "policy": {**bob["policy"], "observe": True}})

    statuses = {
        record.identity.username: AccessAttemptAdmin.status(None, record)
        for record in shown(get(admin_client))
    }
    assert statuses == {
        "alice": f"{FAILURE_LIMIT - 1} attempts remaining",
        "bob": "Would be locked out (observe mode), 30\xa0minutes left",
    }
    [device] = [identity for identity in identities() if identity.device]
    assert device.username == "alice" and device.ip is None
    fields = dict(admin_client.get(record_url(ATTEMPT, device)).context["fields"])
    assert fields["Device (of a device token)"] == device.device


def test_an_ips_lock_for_password_spraying_is_shown(admin_client):
    """An IP locked for naming too many usernames (a site's LOCKOUT_POLICY spraying_limit),
    whose own combinations are not locked: its record says so, and for how long."""
    for username in ("alice", "bob"):
        body = login_body(MALLORY.ip, username, BROWSER, LOGIN_PATH, [["ip", "username"]])
        body["policy"] = {**body["policy"], "spraying_limit": 2, "spraying_window": "1h"}
        client.login_call("/v1/failure", body)

    [sprayer] = [record for record in shown(get(admin_client)) if record.identity.username is None]
    assert sprayer.identity.ip == MALLORY.ip
    assert AccessAttemptAdmin.status(None, sprayer) == (
        "Locked out for password spraying, 30\xa0minutes left"
    )


def test_a_records_page_of_a_record_gone_redirects_to_the_list(admin_client):
    response = admin_client.get(record_url(ATTEMPT, ALICE), follow=True)

    assert response.redirect_chain == [(reverse(ATTEMPTS), 302)]
    assert messages_of(response) == [
        "The access attempt “IP 203.0.113.9, username alice” does not exist any more: it "
        "expired or was reset."
    ]


def test_a_forged_record_url_is_a_bad_request(admin_client):
    url = reverse(ATTEMPT, args=["not-json"])

    assert admin_client.get(url).status_code == 400


def test_deleting_from_a_records_page_asks_then_deletes_and_logs(admin_client):
    fail(ALICE.ip, ALICE.username)
    fail(BOB.ip, BOB.username)

    confirmation = admin_client.get(record_url(ATTEMPT_DELETE, ALICE))
    assert confirmation.status_code == 200
    assert "admin/delete_confirmation.html" in [t.name for t in confirmation.templates]
    assert identities() == {ALICE, BOB}

    response = admin_client.post(record_url(ATTEMPT_DELETE, ALICE), {"post": "yes"}, follow=True)

    assert response.redirect_chain == [(reverse(ATTEMPTS), 302)]
    assert messages_of(response) == [
        "The access attempt “IP 203.0.113.9, username alice” was deleted successfully."
    ]
    assert identities() == {BOB}
    logged = LogEntry.objects.filter(action_flag=DELETION, content_type__model="accessattempt")
    assert list(logged.values_list("object_repr", flat=True)) == ["IP 203.0.113.9, username alice"]
