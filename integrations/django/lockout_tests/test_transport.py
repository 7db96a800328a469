"""The HTTP transport to the lockout service (lockout_axes.transport) against a real
``lockout serve``: kept-alive connections, a restart of the service between two calls, answers
larger than one read, and ports that never answer."""

import json
import socket

import pytest

from lockout_axes import client, transport
from lockout_tests import services

TIMEOUT = 0.5
JSON = "Accept: application/json\r\nContent-Type: application/json\r\n"


def failure(url, ip):
    """POSTs one failure of ``ip`` to the service at ``url``; its highest count."""
    status, body = transport.request(
        "POST", url, "/v1/failure", JSON, f'{{"ip":"{ip}"}}'.encode(), TIMEOUT
    )
    assert status == 200, body
    return max(entry["count"] for entry in json.loads(body)["failures"])


def connection_to(url):
    return transport._connections.get(url, TIMEOUT)


def test_calls_share_one_kept_alive_connection(lockout_service):
    failure(lockout_service.url, "192.0.2.1")
    first = connection_to(lockout_service.url).sock
    assert failure(lockout_service.url, "192.0.2.1") == 2
    assert connection_to(lockout_service.url).sock is first


def test_a_restarted_service_gets_a_new_connection_and_each_call_once(
    lockout_binary, redis_url, workdir
):
    port = services.free_port()
    with services.lockout_serve(lockout_binary, redis_url, workdir, port=port) as first:
        assert failure(first.url, "192.0.2.2") == 1
        before = connection_to(first.url).sock
    with services.lockout_serve(lockout_binary, redis_url, workdir, port=port) as second:
        # The first service closed the kept-alive connection when it stopped: the call goes
        # over a new one, and is counted once.
        assert failure(second.url, "192.0.2.2") == 2
        assert connection_to(second.url).sock is not before


def test_an_answer_larger_than_one_read_arrives_whole(settings, lockout_service):
    user_agent = "A" * 255
    for n in range(400):
        client.login_call(
            "/v1/failure",
            {"ip": f"198.51.{n // 250}.{n % 250}", "username": f"u{n}", "user_agent": user_agent},
        )
    status, body = transport.request(
        "GET",
        lockout_service.url,
        "/v1/attempts?limit=1000",
        f"Authorization: Bearer {lockout_service.admin_token}\r\n",
        None,
        TIMEOUT,
    )
    assert status == 200
    assert len(body) > transport.READ_SIZE
    attempts = json.loads(body)["attempts"]
    assert len(attempts) == 400
    assert {attempt["user_agent"] for attempt in attempts} == {user_agent}


def test_a_port_that_accepts_and_never_answers_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(transport.Unreachable, match="no answer within"):
            transport.request("POST", url, "/v1/check", JSON, b'{"ip":"192.0.2.3"}', 0.2)


def test_a_closed_port_is_unreachable():
    url = f"http://127.0.0.1:{services.free_port()}"
    with pytest.raises(transport.Unreachable, match="cannot connect"):
        transport.request("POST", url, "/v1/check", JSON, b'{"ip":"192.0.2.4"}', TIMEOUT)


def test_a_path_prefix_goes_before_every_target(lockout_service):
    # The service has nothing under /prefix: its 404 shows where the request went.
    status, _ = transport.request(
        "GET", f"{lockout_service.url}/prefix/", "/livez", "", None, TIMEOUT
    )
    assert status == 404
    status, _ = transport.request("GET", lockout_service.url, "/livez", "", None, TIMEOUT)
    assert status == 200
