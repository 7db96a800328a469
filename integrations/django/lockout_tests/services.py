"""The processes the tests run, each on a free loopback port and stopped when done: a private
redis-server, ``lockout serve`` (the binary named by LOCKOUT_BIN) and small WSGI sites.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import urllib3

from lockout_tests.upstream import REPO

STARTUP_DEADLINE_SECONDS = 30
STOP_DEADLINE_SECONDS = 10


@dataclass(frozen=True)
class Service:
    url: str
    admin_token: str
    api_token: str | None
    # Its keys' prefix in Redis.
    prefix: str


def lockout_binary():
    """The binary to test: $LOCKOUT_BIN, else ``<repo>/target/debug/lockout``."""
    return Path(os.environ.get("LOCKOUT_BIN") or REPO / "target" / "debug" / "lockout")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def redis_server(workdir):
    """A redis-server that keeps nothing on disk; yields its URL."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    with _process(command, workdir / f"redis-{port}.log", lambda: _redis_answers(port)):
        yield f"redis://127.0.0.1:{port}"


def shut_down_redis(url):
    """Stop a redis_server() before its context ends, as an outage would."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"SHUTDOWN NOSAVE\r\n")
        connection.recv(16)


@contextmanager
def lockout_serve(
    binary,
    redis_url,
    workdir,
    *,
    api_token=None,
    api_tokens=None,
    on_store_error=None,
    port=None,
    devices_secret=None,
):
    """``lockout serve`` on its own prefix (that of its port: a free one unless given), with a
    fresh admin token (and ``api_tokens``, tokens bound to scopes, when given; device and unlock
    tokens with ``devices_secret``); yields a Service."""
    port = port or free_port()
    admin_token = secrets.token_urlsafe(24)
    prefix = f"lockout-django-{port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOCKOUT_")}
    env |= {
        "LOCKOUT_REDIS_URL": redis_url,
        "LOCKOUT_LISTEN": f"127.0.0.1:{port}",
        "LOCKOUT_PREFIX": prefix,
        "LOCKOUT_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "LOCKOUT_ADMIN_TOKEN": admin_token,
    }
    if api_token:
        env["LOCKOUT_API_TOKEN"] = api_token
    if api_tokens:
        env["LOCKOUT_API_TOKENS"] = json.dumps(api_tokens)
    if on_store_error:
        env["LOCKOUT_ON_STORE_ERROR"] = on_store_error
    if devices_secret:
        env["LOCKOUT_DEVICES_SECRET"] = devices_secret
        # Not the default 90 days: a site's cookie lasts what the service's answer says.
        env["LOCKOUT_DEVICES_TOKEN_TTL"] = "30d"
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"lockout-{port}.log"
    with _process([str(binary), "serve"], log, lambda: _answers(f"{url}/healthz"), env=env):
        yield Service(url=url, admin_token=admin_token, api_token=api_token, prefix=prefix)


@contextmanager
def wsgi_site(module, workdir, env):
    """``python -m MODULE PORT`` with ``env`` added to this environment; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", module, str(port)]
    site_env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)} | env
    log = workdir / f"site-{port}.log"
    with _process(command, log, lambda: _answers(f"{url}/ready"), env=site_env):
        yield url


@contextmanager
def _process(command, log_path, is_ready, env=None):
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_ready(process, is_ready, log_path)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(process, is_ready, log_path):
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while not is_ready():
        if process.poll() is not None or time.monotonic() > deadline:
            state = "exited" if process.returncode is not None else "is not ready"
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{process.args} {state}; its output:\n{tail}")
        time.sleep(0.05)


def _redis_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _answers(url):
    try:
        return urllib3.request("GET", url, timeout=1, retries=False).status == 200
    except urllib3.exceptions.HTTPError:
        return False
