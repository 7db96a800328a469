"""Climweb's operators run ``climweb COMMAND`` (``docker compose exec climweb climweb axes_reset``)
with the settings in the environment of the compose file's env_file. Whatever the service or
the settings say, a command ends with one line saying what is wrong and exit status 1, never a
traceback; the admin's Access attempts page shows it as a message, never a 500."""

import os
import subprocess
import sys

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

COMMANDS = [
    ["axes_reset"],
    ["axes_reset_ip", "203.0.113.5"],
    ["axes_reset_username", "operator"],
    ["axes_reset_ip_username", "203.0.113.5", "operator"],
    ["axes_reset_logs"],
    ["axes_reset_failure_logs"],
    ["axes_list_attempts"],
]


def climweb(*args, **env):
    """``climweb ARGS``: the site's manage.main in a process of its own, with ``env`` as the
    LOCKOUT_* part of its environment."""
    base = {name: value for name, value in os.environ.items() if not name.startswith("LOCKOUT_")}
    base |= {"PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "lockout_tests.climweb_site.manage", *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_without_the_admin_token_a_command_says_so_in_one_line(lockout_service, command):
    done = climweb(*command, LOCKOUT_URL=lockout_service.url)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "CommandError: LOCKOUT_ADMIN_TOKEN is not set: set it to the lockout service's "
        "admin.token to list or reset its records"
    ]


@pytest.mark.parametrize(
    "mistake, says",
    [
        (
            {"LOCKOUT_ADMIN_TOKEN": "not-the-admin-token"},
            "set LOCKOUT_ADMIN_TOKEN to the service's",
        ),
        ({"LOCKOUT_URL": "closed port"}, "Connection refused"),
    ],
    ids=["refused token", "unreachable"],
)
def test_a_service_error_is_one_line(lockout_service, closed_port, mistake, says):
    env = {"LOCKOUT_URL": lockout_service.url, "LOCKOUT_ADMIN_TOKEN": lockout_service.admin_token}
    env |= {
        name: closed_port if value == "closed port" else value for name, value in mistake.items()
    }
    done = climweb("axes_reset", **env)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("CommandError: ") and says in line
    assert "not-the-admin-token" not in line


def test_with_the_env_file_settings_the_commands_work(lockout_service):
    env = {"LOCKOUT_URL": lockout_service.url, "LOCKOUT_ADMIN_TOKEN": lockout_service.admin_token}
    done = climweb("axes_reset", **env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "No attempts found.\n", "")


def test_check_names_a_missing_admin_token(lockout_service):
    done = climweb("check", LOCKOUT_URL=lockout_service.url)
    assert done.returncode == 1
    assert "(lockout_axes.E007) LOCKOUT_ADMIN_TOKEN is not set" in done.stderr
    assert "HINT: axes_reset*, axes_list_attempts and the admin's" in done.stderr


@pytest.mark.django_db
def test_the_admin_page_shows_a_missing_admin_token_as_a_message(settings, client, operator):
    settings.LOCKOUT_ADMIN_TOKEN = None
    client.force_login(operator)
    response = client.get(reverse("admin:lockout_axes_accessattempt_changelist"))
    assert response.status_code == 200
    [message] = [str(message) for message in get_messages(response.wsgi_request)]
    assert "LOCKOUT_ADMIN_TOKEN is not set" in message
