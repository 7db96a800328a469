"""What a locked-out login gets with LockoutHandler: Axes' own responses, chosen by Axes'
settings (429 by default, ``AXES_LOCKOUT_CALLABLE``, JSON for XHR), and ``user_locked_out``
once per failed login that ends locked, as Axes' database handler sends it."""

import json

import pytest
from axes.signals import user_locked_out
from django.http import HttpResponse
from django.urls import reverse

from lockout_tests.support import LOCKOUT_HANDLER

IP = "10.3.3.3"


@pytest.fixture(autouse=True)
def lockout_handler(settings):
    settings.AXES_HANDLER = LOCKOUT_HANDLER
    settings.AXES_FAILURE_LIMIT = 2


@pytest.fixture
def signals():
    received = []

    def receive(sender, request, username, ip_address, **kwargs):
        received.append((username, ip_address))

    user_locked_out.connect(receive)
    yield received
    user_locked_out.disconnect(receive)


def wrong_login(client, **headers):
    return client.post(
        reverse("admin:login"),
        {"username": "mallory", "password": "wrong"},
        REMOTE_ADDR=IP,
        **headers,
    )


def teapot(request, credentials, *args, **kwargs):
    return HttpResponse("locked out, custom", status=418)


@pytest.mark.django_db
def test_the_default_lockout_response_is_429_and_the_signal_follows_each_locked_login(
    client, signals
):
    assert wrong_login(client).status_code == 200
    assert signals == []
    locked = wrong_login(client)
    assert locked.status_code == 429
    assert signals == [("mallory", IP)], "the failure that reached the limit"
    assert wrong_login(client).status_code == 429
    assert signals == [("mallory", IP)] * 2, "a refused attempt is a failed login too"


@pytest.mark.django_db
def test_axes_lockout_callable_answers(client, settings):
    settings.AXES_LOCKOUT_CALLABLE = "lockout_tests.test_lockout_responses.teapot"
    wrong_login(client)
    response = wrong_login(client)
    assert (response.status_code, response.content) == (418, b"locked out, custom")


@pytest.mark.django_db
def test_xhr_gets_json(client):
    wrong_login(client)
    response = wrong_login(client, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 429
    assert response["Content-Type"].startswith("application/json")
    assert "failure_limit" in json.loads(response.content)
