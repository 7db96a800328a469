"""What the admin tests share: records and log entries made in the service, the pages' names,
staff users with given permissions, and a headless Chromium."""

import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from lockout_axes import client
from lockout_axes.records import Identity
from lockout_tests.support import records

ATTEMPTS = "admin:lockout_axes_accessattempt_changelist"
ATTEMPT = "admin:lockout_axes_accessattempt_change"
ATTEMPT_DELETE = "admin:lockout_axes_accessattempt_delete"
ACCESS_LOGS = "admin:lockout_axes_accesslog_changelist"
ACCESS_FAILURES = "admin:lockout_axes_accessfailurelog_changelist"
# The tests' AXES_FAILURE_LIMIT, so that the service locks where the status column counts down.
FAILURE_LIMIT = 10
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
LOGIN_PATH = "/dj-ad-admin/login/"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGE_LOAD_SECONDS = 10

ALICE = Identity(ip="203.0.113.9", username="alice")
BOB = Identity(ip="198.51.100.7", username="bob")
CAROL = Identity(ip="198.51.100.7", username="carol")


def current_page(content):
    """The page number Django's paginator marks as this one (a span before Django 6.0, a link
    with aria-current since)."""
    match = re.search(
        r'<span class="this-page">(\d+)</span>|aria-current="page">(\d+)</a>', content
    )
    return match and int(match.group(1) or match.group(2))


def page_links(content):
    """The page numbers Django's paginator links to from this page."""
    return [int(number) for number in re.findall(r'href="\?p=(\d+)"[^>]*>\1</a>', content)]


def sort_link(content, text):
    """The href of the sortable column header ``text`` (Django 6.0 adds ``role="button"``)."""
    match = re.search(rf'<a (?:role="button" )?href="([^"]*)">{re.escape(text)}</a>', content)
    return match and match.group(1)


def login_body(ip, username, user_agent, path, combinations):
    return {
        "ip": ip,
        "username": username,
        "user_agent": user_agent,
        "path": path,
        "policy": {"failure_limit": FAILURE_LIMIT, "lockout_parameters": combinations},
    }


def fail(
    ip,
    username=None,
    *,
    times=1,
    user_agent=BROWSER,
    path=LOGIN_PATH,
    combinations=(("ip", "username"),),
):
    """Report ``times`` failed logins to the service: one record per combination."""
    body = login_body(ip, username, user_agent, path, combinations)
    for _ in range(times):
        client.login_call("/v1/failure", body)


def refuse(ip, username=None, *, user_agent=BROWSER, combinations=(("ip", "username"),)):
    """A login checked while locked out: the service counts it and logs it as refused."""
    body = login_body(ip, username, user_agent, LOGIN_PATH, combinations)
    del body["path"]
    assert client.login_call("/v1/check", body)["locked"]


def succeed(ip, username):
    client.login_call("/v1/success", login_body(ip, username, BROWSER, LOGIN_PATH, [["ip"]]))


def record_url(name, identity):
    """The URL of a record's page (ATTEMPT) or its deletion (ATTEMPT_DELETE), as the list links."""
    return reverse(name, args=[quote(identity.pk)])


def backdate(redis_url, service, identity, by):
    """Move a record's failures ``by`` (a timedelta) into the past, in Redis, as failures that
    long ago would have left them (the record's ``f`` and ``l`` fields, docs/keys.md): the
    tests' clock seam for the order and the date filters, whose times are whole seconds."""
    record, key = _record_in_redis(redis_url, service, identity)
    moved = {
        field: str(int(parse_datetime(record[name]).timestamp() - by.total_seconds()))
        for field, name in (("f", "first_failure"), ("l", "last_failure"))
    }
    _redis(redis_url, "HSET", key, *moved.popitem(), *moved.popitem())


CLONE_SCRIPT = """
local fields, ttl = redis.call('HGETALL', KEYS[1]), redis.call('PTTL', KEYS[1])
for n = 1, tonumber(ARGV[1]) do
  local key = KEYS[1] .. '-' .. n
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, ttl)
end
"""


def clone_record(redis_url, service, identity, count):
    """``count`` copies of a record whose identity has a username, in Redis, as the service
    would have left them for usernames ``<username>-1`` ... ``<username>-<count>`` from the same
    IP (docs/keys.md: an identity's shard is its first pair's, so the copies share the key's
    hash tag): many records at once, without as many logins."""
    _, key = _record_in_redis(redis_url, service, identity)
    _redis(redis_url, "EVAL", CLONE_SCRIPT, "1", key, str(count))


def _record_in_redis(redis_url, service, identity):
    """The service's record of ``identity`` and its key in Redis."""
    record = client.admin_call("GET", "/v1/attempts/record", **identity.parameters)["attempt"]
    keys = _redis(redis_url, "--scan", "--pattern", f"{service.prefix}:attempt:*").splitlines()
    [key] = [key for key in keys if key.endswith("}" + record["identity"])]
    return record, key


def _redis(redis_url, *arguments):
    command = ["redis-cli", "-u", redis_url, *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def local_now():
    """Now in the site's time zone, aware or naive as the site's datetimes are."""
    now = timezone.now()
    return timezone.localtime(now) if timezone.is_aware(now) else now


def identities():
    return {Identity(**record["parameters"]) for record in records()}


def shown(response):
    """The records or log entries a list page shows, in its order."""
    return list(response.context["cl"].result_list)


def shown_identities(response):
    return [record.identity for record in shown(response)]


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def staff_user(django_user_model, *permissions):
    """A staff user holding these permissions (``app_label.codename``)."""
    user = django_user_model.objects.create_user("operator", password="x", is_staff=True)
    wanted = Q(pk__in=[])
    for permission in permissions:
        app_label, codename = permission.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    granted = Permission.objects.filter(wanted)
    assert granted.count() == len(permissions)
    user.user_permissions.set(granted)
    return user


@contextmanager
def chromium():
    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.is_file():
            pytest.fail(f"{program} is missing: install chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1920,900"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def follow(browser, element):
    """Click ``element`` and wait until the page it leads to has replaced this one."""
    element.click()
    WebDriverWait(browser, PAGE_LOAD_SECONDS).until(staleness_of(element))
