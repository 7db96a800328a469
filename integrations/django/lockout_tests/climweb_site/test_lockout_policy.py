"""LOCKOUT_POLICY on the Climweb-like site: its keys join the policy Axes' settings give each
login call, and in observe mode (``{"observe": True}``) nobody is refused and every lock the
service withholds is in the log. The checks of bad keys are in test_misconfiguration.py."""

import logging

import pytest
from django.test import Client

from lockout_axes import client
from lockout_tests.climweb_site.conftest import PASSWORD, USERNAME
from lockout_tests.climweb_site.support import LOGIN_PAGES

PAGE = LOGIN_PAGES[0]
CLIMWEB_COOLOFF_SECS = 30 * 60


@pytest.mark.django_db
def test_lockout_policy_joins_the_policy_of_axes_settings(settings, operator):
    settings.LOCKOUT_POLICY = {"lockout_duration": "2h"}
    statuses = [PAGE.post(Client(), USERNAME, "wrong").status_code for _ in range(3)]
    assert statuses == [200, 200, 429], "Axes' limit of 3"
    [record] = client.iter_attempts()
    assert CLIMWEB_COOLOFF_SECS < record["retry_after_secs"] <= 2 * 3600


@pytest.mark.django_db
def test_observe_mode_refuses_nobody_and_logs_each_would_be_lock(
    settings, operator, caplog, lockout_signals
):
    settings.LOCKOUT_POLICY = {"observe": True}
    caplog.set_level(logging.WARNING, logger="lockout_axes.handler")
    statuses = [PAGE.post(Client(), USERNAME, "wrong").status_code for _ in range(5)]
    assert statuses == [200] * 5
    [record] = client.iter_attempts()
    assert (record["locked"], record["would_lock"], record["failures"]) == (False, True, 5)
    assert PAGE.post(Client(), USERNAME, PASSWORD).status_code == 302
    observed = [r.getMessage() for r in caplog.records if "Observe mode" in r.getMessage()]
    assert ["would lock out" in line for line in observed] == [True, False, False, False]
    assert all("would refuse the login of" in line for line in observed[1:])
    assert all("locked by [['ip', 'username']], for 1800 s" in line for line in observed)
    assert lockout_signals == []


@pytest.mark.django_db
def test_spraying_from_one_address_locks_it_out_for_every_username(settings, operator):
    """Password spraying through the site's login page: Climweb's pair combination never
    reaches Axes' limit (each username fails once), but LOCKOUT_POLICY's spraying_limit locks
    the address after 3 usernames, whatever username it tries next."""
    settings.LOCKOUT_POLICY = {"spraying_limit": 3, "spraying_window": "1h"}
    statuses = [PAGE.post(Client(), name, "Spring2026!").status_code for name in "abc"]
    assert statuses == [200, 200, 429], "the third username locks the address"
    assert PAGE.post(Client(), USERNAME, PASSWORD).status_code == 429, "whatever username"
    [sprayer] = [record for record in client.iter_attempts() if record.get("spraying")]
    assert sprayer["spraying"]["usernames"] == 3 and sprayer["spraying"]["locked"]
