"""The same logins through Django's test client, once with Axes' database handler and once with
LockoutHandler: after every step the response status (the lock verdict), the step's failure
count (``AxesProxyHandler.get_failures``) and the ``user_locked_out`` signals sent are the same.

The resets in the sequences are those both keep alike. Records are per identity in lockout and
per (username, IP, user agent) row in Axes' database, so a reset that deletes rows of one
identity can lower another identity's count in Axes but not in lockout (README.md).
"""

from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.test import TestCase, override_settings
from django.urls import reverse

from lockout_axes import client
from lockout_tests.support import DATABASE_HANDLER, LOCKOUT_HANDLER

PASSWORD = "right-password"
IP_1, IP_2, IP_3 = "10.0.0.1", "10.0.0.2", "10.0.0.3"


@dataclass(frozen=True)
class Login:
    username: str
    ip: str
    right_password: bool = False


@dataclass(frozen=True)
class Reset:
    ip: str | None = None
    username: str | None = None


def wrong(username, ip, times=1):
    return [Login(username, ip)] * times


def right(username, ip):
    return [Login(username, ip, right_password=True)]


SCENARIOS = {
    "ip": (
        {"AXES_LOCKOUT_PARAMETERS": ["ip_address"]},
        wrong("alice", IP_1, 2)
        + wrong("bob", IP_1)
        + right("alice", IP_1)
        + right("alice", IP_2)
        + [Reset(ip=IP_1)]
        + right("alice", IP_1)
        + wrong("bob", IP_2, 4)
        + [Reset()]
        + right("bob", IP_2),
    ),
    "username and ip together": (
        {"AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]]},
        wrong("alice", IP_1, 3)
        + right("alice", IP_2)
        + wrong("bob", IP_1)
        + right("alice", IP_1)
        + [Reset(ip=IP_1, username="alice")]
        + right("alice", IP_1)
        + wrong("bob", IP_1, 3)
        + wrong("alice", IP_1)
        + [Reset(username="bob")]
        + right("bob", IP_1)
        + wrong("alice", IP_1, 2)
        + [Reset(ip=IP_1)]
        + wrong("alice", IP_1),
    ),
    "username or ip": (
        {"AXES_LOCKOUT_PARAMETERS": ["username", "ip_address"]},
        wrong("alice", IP_1, 2)
        + wrong("bob", IP_2)
        + wrong("alice", IP_2)
        + right("bob", IP_2)
        + right("alice", IP_3)
        + wrong("carol", IP_2)
        + right("bob", IP_2)
        + right("bob", IP_3)
        + [Reset()]
        + right("alice", IP_1),
    ),
    "username": (
        {"AXES_LOCKOUT_PARAMETERS": ["username"]},
        wrong("alice", IP_1)
        + wrong("alice", IP_2)
        + wrong("alice", IP_3)
        + right("alice", IP_3)
        + right("bob", IP_1)
        + [Reset(username="alice")]
        + right("alice", IP_1),
    ),
    "reset on success": (
        {"AXES_LOCKOUT_PARAMETERS": ["ip_address"], "AXES_RESET_ON_SUCCESS": True},
        wrong("alice", IP_1, 2)
        + right("alice", IP_1)
        + wrong("alice", IP_1, 2)
        + wrong("bob", IP_1)
        + right("alice", IP_1),
    ),
    "reset on success, username and ip together": (
        {
            "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]],
            "AXES_RESET_ON_SUCCESS": True,
        },
        wrong("alice", IP_1, 2)
        + wrong("alice", IP_2)
        + right("alice", IP_1)
        + wrong("alice", IP_2, 2)
        + right("alice", IP_2),
    ),
    "reset on success, ip or username with user agent": (
        {
            "AXES_LOCKOUT_PARAMETERS": ["ip_address", ["username", "user_agent"]],
            "AXES_RESET_ON_SUCCESS": True,
        },
        wrong("alice", IP_1, 2)
        + right("alice", IP_1)
        + wrong("alice", IP_2, 2)
        + wrong("alice", IP_3)
        + right("alice", IP_1)
        + wrong("bob", IP_2, 3),
    ),
    "no lock out at failure": (
        {"AXES_LOCKOUT_PARAMETERS": ["ip_address"], "AXES_LOCK_OUT_AT_FAILURE": False},
        wrong("alice", IP_1, 4) + right("alice", IP_1),
    ),
    "refusals do not extend the lock": (
        {
            "AXES_LOCKOUT_PARAMETERS": ["ip_address"],
            "AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT": False,
        },
        wrong("alice", IP_1, 5) + right("alice", IP_1) + right("alice", IP_2),
    ),
}


@override_settings(AXES_FAILURE_LIMIT=3)
class DifferentialTestCase(TestCase):
    def setUp(self):
        for username in ("alice", "bob", "carol"):
            get_user_model().objects.create_superuser(username, f"{username}@example.com", PASSWORD)

    def test_lockout_handler_answers_as_the_database_handler(self):
        for name, (policy, steps) in SCENARIOS.items():
            with self.subTest(name), self.settings(**policy):
                expected = self.observe(DATABASE_HANDLER, steps)
                self.assertEqual(expected, self.observe(LOCKOUT_HANDLER, steps))

    def observe(self, handler, steps):
        """(status, failures, signals) after each login: the database handler's rows and the
        service's records are cleared first, the signals are those of the step."""
        AccessAttempt.objects.all().delete()
        client.admin_call("DELETE", "/v1/attempts", all="true")
        signals = []

        def record_signal(sender, request, username, ip_address, **kwargs):
            signals.append((username, ip_address))

        observations = []
        user_locked_out.connect(record_signal)
        try:
            with self.settings(AXES_HANDLER=handler):
                for step in steps:
                    if isinstance(step, Reset):
                        AxesProxyHandler.reset_attempts(ip_address=step.ip, username=step.username)
                        continue
                    response = self.login(step)
                    failures = AxesProxyHandler.get_failures(response.wsgi_request)
                    observations.append((step, response.status_code, failures, signals[:]))
                    signals.clear()
        finally:
            user_locked_out.disconnect(record_signal)
        return observations

    def login(self, step):
        password = PASSWORD if step.right_password else "wrong-password"
        return self.client.post(
            reverse("admin:login"),
            {"username": step.username, "password": password},
            REMOTE_ADDR=step.ip,
            HTTP_USER_AGENT="test-browser",
        )
