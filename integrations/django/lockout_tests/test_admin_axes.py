"""lockout's admin pages where Axes' were: registered in their place while LockoutHandler is in
use, Axes' URLs redirecting to them, Axes' permissions still granting their rights, and stepping
aside when the site rolls back to an Axes handler."""

import os
import subprocess
import sys

import pytest
from axes.models import AccessAttempt as AxesAccessAttempt
from axes.models import AccessFailureLog as AxesAccessFailureLog
from axes.models import AccessLog as AxesAccessLog
from django.contrib import admin
from django.urls import reverse

from lockout_axes.models import AccessAttempt, AccessFailureLog, AccessLog
from lockout_tests.admin_support import (
    ACCESS_FAILURES,
    ACCESS_LOGS,
    ATTEMPT,
    ATTEMPT_DELETE,
    ATTEMPTS,
    BOB,
    fail,
    identities,
    record_url,
    staff_user,
)

pytestmark = pytest.mark.urls("lockout_tests.admin_urls")

PAGES = {
    ATTEMPTS: "Access attempts",
    ACCESS_LOGS: "Access logs",
    ACCESS_FAILURES: "Access failures",
}


def test_lockouts_pages_are_in_the_index_where_the_site_mounts_the_admin(admin_client):
    index = admin_client.get("/dj-ad-admin/").content.decode()

    for name, title in PAGES.items():
        assert f'href="{reverse(name)}">{title}</a>' in index
    assert reverse(ATTEMPTS) == "/dj-ad-admin/lockout_axes/accessattempt/"
    # Axes' models stay registered, for their URLs, but are in no index.
    assert "/dj-ad-admin/axes/" not in index
    assert admin_client.get("/dj-ad-admin/axes/").status_code == 404


@pytest.mark.parametrize(
    ("axes_url", "lockout_url"),
    [
        ("/dj-ad-admin/axes/accessattempt/", "/dj-ad-admin/lockout_axes/accessattempt/"),
        (
            "/dj-ad-admin/axes/accessattempt/?q=alice&o=-6&locked_out=yes",
            "/dj-ad-admin/lockout_axes/accessattempt/?q=alice&o=-6&locked_out=yes",
        ),
        ("/dj-ad-admin/axes/accessattempt/12/change/", "/dj-ad-admin/lockout_axes/accessattempt/"),
        ("/dj-ad-admin/axes/accessattempt/12/delete/", "/dj-ad-admin/lockout_axes/accessattempt/"),
        ("/dj-ad-admin/axes/accesslog/", "/dj-ad-admin/lockout_axes/accesslog/"),
        ("/dj-ad-admin/axes/accesslog/3/change/", "/dj-ad-admin/lockout_axes/accesslog/"),
        ("/dj-ad-admin/axes/accessfailurelog/", "/dj-ad-admin/lockout_axes/accessfailurelog/"),
        (
            "/dj-ad-admin/axes/accessfailurelog/?attempt_time__gte=2026-12-01",
            "/dj-ad-admin/lockout_axes/accessfailurelog/?attempt_time__gte=2026-12-01",
        ),
        (
            "/dj-ad-admin/axes/accessfailurelog/7/change/",
            "/dj-ad-admin/lockout_axes/accessfailurelog/",
        ),
    ],
)
def test_axes_admin_urls_redirect_to_lockouts_pages(admin_client, axes_url, lockout_url):
    response = admin_client.get(axes_url)

    assert response.status_code == 302
    assert response.url == lockout_url


def test_axes_admin_urls_ask_anonymous_visitors_to_log_in(client):
    response = client.get("/dj-ad-admin/axes/accessattempt/")

    assert response.status_code == 302
    assert response.url.startswith("/dj-ad-admin/login/")


@pytest.mark.parametrize(
    ("permission", "allowed"),
    [
        ("axes.view_accessattempt", {ATTEMPTS}),
        ("axes.change_accessattempt", {ATTEMPTS}),
        ("axes.view_accesslog", {ACCESS_LOGS}),
        ("axes.view_accessfailurelog", {ACCESS_FAILURES}),
        ("lockout_axes.view_accesslog", {ACCESS_LOGS}),
        ("lockout_axes.view_accessfailurelog", {ACCESS_FAILURES}),
    ],
)
def test_axes_view_permissions_grant_lockouts_pages(client, django_user_model, permission, allowed):
    client.force_login(staff_user(django_user_model, permission))

    index = client.get("/dj-ad-admin/").content.decode()

    for name in PAGES:
        expected = 200 if name in allowed else 403
        assert client.get(reverse(name)).status_code == expected, name
        assert (f'href="{reverse(name)}"' in index) == (name in allowed), name


def test_staff_without_permissions_see_none_of_the_pages(client, django_user_model):
    client.force_login(staff_user(django_user_model))

    for name in PAGES:
        assert client.get(reverse(name)).status_code == 403


def test_axes_delete_permission_deletes_from_a_records_page(client, django_user_model):
    fail(BOB.ip, BOB.username)
    client.force_login(
        staff_user(django_user_model, "axes.view_accessattempt", "axes.delete_accessattempt")
    )

    assert client.get(record_url(ATTEMPT_DELETE, BOB)).status_code == 200
    response = client.post(record_url(ATTEMPT_DELETE, BOB), {"post": "yes"})

    assert response.status_code == 302 and response.url == reverse(ATTEMPTS)
    assert identities() == set()


def test_axes_view_permission_alone_cannot_delete(client, django_user_model):
    fail(BOB.ip, BOB.username)
    client.force_login(staff_user(django_user_model, "axes.view_accessattempt"))

    assert client.get(record_url(ATTEMPT, BOB)).status_code == 200
    assert client.post(record_url(ATTEMPT_DELETE, BOB), {"post": "yes"}).status_code == 403
    assert identities() == {BOB}


def test_lockouts_admins_replace_axes_own():
    for axes_model, lockout_model in (
        (AxesAccessAttempt, AccessAttempt),
        (AxesAccessLog, AccessLog),
        (AxesAccessFailureLog, AccessFailureLog),
    ):
        assert admin.site.is_registered(lockout_model)
        assert type(admin.site._registry[axes_model]).__module__ == "lockout_axes.admin.axes_urls"


ROLLBACK_SCRIPT = """
import django
django.setup()
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
import lockout_axes.models as lockout

setup_test_environment()
call_command("migrate", verbosity=0)
for model in (AccessAttempt, AccessLog, AccessFailureLog):
    print(model.__name__, type(admin.site._registry[model]).__module__)
for model in (lockout.AccessAttempt, lockout.AccessLog, lockout.AccessFailureLog):
    print("lockout", model.__name__, admin.site.is_registered(model))
client = Client()
client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
for url in (
    "/dj-ad-admin/axes/accessattempt/",
    "/dj-ad-admin/axes/accesslog/",
    "/dj-ad-admin/axes/accessfailurelog/",
    "/dj-ad-admin/lockout_axes/accessattempt/",
):
    print(url, client.get(url).status_code)
"""


def run_with_settings(tmp_path, extra_settings, script):
    (tmp_path / "site_settings.py").write_text(
        "from lockout_tests.settings import *  # noqa: F403\n"
        'ROOT_URLCONF = "lockout_tests.admin_urls"\n' + extra_settings
    )
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "site_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_rolled_back_to_an_axes_handler_axes_admin_works_and_lockouts_steps_aside(tmp_path):
    output = run_with_settings(
        tmp_path, 'AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"\n', ROLLBACK_SCRIPT
    )

    assert output == [
        "AccessAttempt axes.admin",
        "AccessLog axes.admin",
        "AccessFailureLog axes.admin",
        "lockout AccessAttempt False",
        "lockout AccessLog False",
        "lockout AccessFailureLog False",
        "/dj-ad-admin/axes/accessattempt/ 200",
        "/dj-ad-admin/axes/accesslog/ 200",
        "/dj-ad-admin/axes/accessfailurelog/ 200",
        "/dj-ad-admin/lockout_axes/accessattempt/ 404",
    ]


def test_axes_enable_admin_false_registers_no_admin(tmp_path):
    script = (
        "import django; django.setup()\n"
        "from django.contrib import admin\n"
        "import axes.models as A, lockout_axes.models as L\n"
        "for m in (A.AccessAttempt, A.AccessLog, L.AccessAttempt, L.AccessLog):\n"
        "    print(admin.site.is_registered(m))\n"
    )

    output = run_with_settings(tmp_path, "AXES_ENABLE_ADMIN = False\n", script)

    assert output == ["False"] * 4
