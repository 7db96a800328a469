"""A Django login through Django Axes, for the benchmark tool (benches/lockout/): the
failed-login flow of a Django site, first with Axes' cache handler on Redis, then with the
lockout_axes handler and ``lockout serve``, so that a site sees what switching saves.

    python django_login.py HANDLER CASE HOST PORT LOCKOUT_URL SECONDS IPS USERNAMES

HANDLER is ``axes-cache`` (Axes' AxesCacheHandler over Django's Redis cache, keys under
``lockout-bench-axes``) or ``lockout`` (lockout_axes.handler.LockoutHandler at LOCKOUT_URL).
Each login is what Django's login view does with a wrong password: ``authenticate()`` through
Axes' backend (its check) and ModelBackend, whose failure Axes records from
``user_login_failed``; random IPs and usernames, limit 3, policy ``ip_address``. CASE is
``failed`` (logins from random IPs of IPS, few of them locked) or ``refused`` (logins from 1,000
attackers' IPs, each locked before the run by three failures: Axes refuses them before the
password is checked, the case of a flood). One process,
one login at a time: Django's own way. The password hasher is MD5, as in Django's own tests:
a real site's PBKDF2 (about 200 ms of CPU per login, paid for a user that does not exist too)
would hide what the handlers cost. Axes' log lines are off. Redis' user, password, db and TLS
files come from the environment as the tool gives them to every peer (REDIS_USERNAME,
REDIS_PASSWORD, REDIS_DB, REDIS_TLS, REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY).

Prints ``ready`` once set up, waits for a line on stdin, runs for SECONDS, prints
``{"latencies_us": [...]}``, then waits for stdin to close (the tool reads this process' CPU
time in between).
"""

import json
import logging
import os
import random
import sys
import time

import django
from django.conf import settings

FAILURE_LIMIT = 3
# The refused case's attackers, each locked before the run.
ATTACKERS = 1000


def redis_cache(host, port):
    """Django's Redis cache on the tool's Redis, as the environment describes it."""
    env = os.environ.get
    tls = env("REDIS_TLS", "")
    options = {"username": env("REDIS_USERNAME") or None, "password": env("REDIS_PASSWORD") or None}
    if tls:
        options["ssl_ca_certs"] = env("REDIS_TLS_CA") or None
        options["ssl_certfile"] = env("REDIS_TLS_CERT") or None
        options["ssl_keyfile"] = env("REDIS_TLS_KEY") or None
        if tls == "insecure":
            options["ssl_cert_reqs"] = "none"
    scheme = "rediss" if tls else "redis"
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"{scheme}://{host}:{port}/{env('REDIS_DB', '0')}",
        "KEY_PREFIX": "lockout-bench-axes",
        "OPTIONS": options,
    }


def configure(handler, host, port, lockout_url):
    apps = ["django.contrib.auth", "django.contrib.contenttypes"]
    if handler == "axes-cache":
        apps += ["axes"]
        chosen = {
            "AXES_HANDLER": "axes.handlers.cache.AxesCacheHandler",
            "CACHES": {"default": redis_cache(host, port)},
        }
    elif handler == "lockout":
        apps += ["lockout_axes", "axes"]
        chosen = {"AXES_HANDLER": "lockout_axes.handler.LockoutHandler", "LOCKOUT_URL": lockout_url}
    else:
        sys.exit(f"django_login.py: unknown handler {handler!r}")
    settings.configure(
        SECRET_KEY="benchmark",
        USE_TZ=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=apps,
        AUTHENTICATION_BACKENDS=[
            "axes.backends.AxesStandaloneBackend",
            "django.contrib.auth.backends.ModelBackend",
        ],
        AXES_FAILURE_LIMIT=FAILURE_LIMIT,
        AXES_LOCKOUT_PARAMETERS=["ip_address"],
        AXES_VERBOSE=False,
        LOGGING_CONFIG=None,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        **chosen,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def login_request(ip_address):
    from django.http import HttpRequest

    request = HttpRequest()
    request.method = "POST"
    request.path = request.path_info = "/login/"
    request.META.update(REMOTE_ADDR=ip_address, HTTP_USER_AGENT="benchmark", PATH_INFO="/login/")
    return request


def attacker_ip(n):
    return f"172.16.{n >> 8 & 255}.{n & 255}"


def main():
    handler, case, host, port, lockout_url, seconds, ips, usernames = sys.argv[1:9]
    logging.disable(logging.WARNING)
    configure(handler, host, port, lockout_url)
    from django.contrib.auth import authenticate

    rng = random.Random(7)

    def login_from(ip):
        request = login_request(ip)
        username = f"user{rng.randrange(int(usernames))}"
        authenticate(request, username=username, password="x")
        return request

    if case == "failed":

        def login():
            n = rng.randrange(int(ips))
            login_from(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")

    elif case == "refused":
        for n in range(ATTACKERS):
            for _ in range(FAILURE_LIMIT):
                login_from(attacker_ip(n))

        def login():
            login_from(attacker_ip(rng.randrange(ATTACKERS)))

        if not login_from(attacker_ip(0)).axes_locked_out:
            sys.exit("django_login.py: the refused case's attackers are not locked")

    else:
        sys.exit(f"django_login.py: unknown case {case!r}")

    for _ in range(200):  # warm-up: imports, connections
        login()
    print("ready", flush=True)
    sys.stdin.readline()
    latencies = []
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        started = time.perf_counter_ns()
        login()
        latencies.append((time.perf_counter_ns() - started) // 1000)
    print(json.dumps({"latencies_us": latencies}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
