"""Switching a site from Axes' database handler to LockoutHandler: ``lockout_import_axes``
moves Axes' rows into the service, so that a lockout in force stays in force for the time it has
left and the counts carry on; a dry run writes nothing and a second run changes nothing."""

from datetime import timedelta
from datetime import timezone as dt_timezone
from io import StringIO

from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone

from lockout_axes import client
from lockout_tests import services
from lockout_tests.support import (
    DATABASE_HANDLER,
    LOCKOUT_HANDLER,
    SITE_PASSWORD,
    TEST_SCOPE,
    login_request,
    records,
)

COOLOFF = timedelta(minutes=30)
EDITOR_IP, OTHER_IP = "10.0.0.1", "10.0.0.2"
# The most a test's own run may take off a remaining time it reads.
SLACK_SECONDS = 30


def command(*args):
    output = StringIO()
    call_command(*args, stdout=output)
    return output.getvalue().splitlines()


def by_parameters():
    return {tuple(sorted(record["parameters"].items())): record for record in records()}


@override_settings(
    AXES_FAILURE_LIMIT=3,
    AXES_COOLOFF_TIME=COOLOFF,
    AXES_LOCKOUT_PARAMETERS=["ip_address"],
    AXES_HANDLER=DATABASE_HANDLER,
)
class ImportTestCase(TestCase):
    def setUp(self):
        get_user_model().objects.create_superuser("editor", "editor@example.com", SITE_PASSWORD)

    def login(self, username, ip, password="wrong-password"):
        return self.client.post(
            reverse("admin:login"),
            {"username": username, "password": password},
            REMOTE_ADDR=ip,
            HTTP_USER_AGENT="test-browser",
        )

    def fail_under_axes(self, username, ip, times, minutes_ago=0):
        """Failed logins counted by Axes' database handler, its row then dated back."""
        for _ in range(times):
            self.login(username, ip)
        self.date_back(username, ip, minutes_ago)

    def date_back(self, username, ip, minutes):
        AccessAttempt.objects.filter(username=username, ip_address=ip).update(
            attempt_time=timezone.now() - timedelta(minutes=minutes)
        )

    def is_locked(self, ip, username="editor"):
        return AxesProxyHandler.is_locked(login_request(ip), {"username": username})

    def assert_locked_for(self, record, seconds_left):
        self.assertTrue(record["locked"], record)
        self.assertLessEqual(record["retry_after_secs"], seconds_left)
        self.assertGreater(record["retry_after_secs"], seconds_left - SLACK_SECONDS)

    def test_a_lockout_in_force_stays_in_force_for_its_remaining_time(self):
        self.fail_under_axes("editor", EDITOR_IP, 3)
        # Refused, and counted, as Axes counts a login during its lockout.
        self.assertEqual(429, self.login("editor", EDITOR_IP, SITE_PASSWORD).status_code)
        self.date_back("editor", EDITOR_IP, 10)
        with self.settings(AXES_HANDLER=LOCKOUT_HANDLER):
            self.assertFalse(self.is_locked(EDITOR_IP), "nothing in the service yet")

        self.assertEqual(
            [
                "Imported 1 records (1 locked out) from 1 Axes access attempts within their "
                "cool-off."
            ],
            command("lockout_import_axes"),
        )

        with self.settings(AXES_HANDLER=LOCKOUT_HANDLER):
            [record] = records()
            self.assertEqual({"ip": EDITOR_IP}, record["parameters"])
            self.assertEqual(4, record["failures"])
            self.assertEqual("/admin/login/", record["path"])
            self.assertEqual("test-browser", record["user_agent"])
            self.assert_locked_for(record, 20 * 60)
            self.assertTrue(self.is_locked(EDITOR_IP))
            self.assertEqual(429, self.login("editor", EDITOR_IP, SITE_PASSWORD).status_code)
            self.assertEqual(200, self.login("editor", OTHER_IP).status_code)

    def test_counts_carry_on(self):
        self.fail_under_axes("editor", EDITOR_IP, 2)
        self.assertEqual(
            [
                "Imported 1 records (0 locked out) from 1 Axes access attempts within their "
                "cool-off."
            ],
            command("lockout_import_axes"),
        )
        with self.settings(AXES_HANDLER=LOCKOUT_HANDLER):
            self.assertFalse(self.is_locked(EDITOR_IP))
            self.assertEqual(429, self.login("editor", EDITOR_IP).status_code)
            [record] = records()
            self.assertEqual(3, record["failures"])
            self.assert_locked_for(record, COOLOFF.total_seconds())

    def test_a_dry_run_writes_nothing(self):
        self.fail_under_axes("editor", EDITOR_IP, 3)
        self.assertEqual(
            [
                "Would import 1 records (1 locked out) from 1 Axes access attempts within "
                "their cool-off.",
                "Dry run: nothing was written.",
            ],
            command("lockout_import_axes", "--dry-run"),
        )
        self.assertEqual([], records())

    def test_a_second_run_changes_nothing(self):
        self.fail_under_axes("editor", EDITOR_IP, 3, minutes_ago=10)
        first = command("lockout_import_axes")
        [before] = records()
        self.assertEqual(first, command("lockout_import_axes"))
        [after] = records()
        self.assertEqual(3, after["failures"])
        self.assertEqual(before["first_failure"], after["first_failure"])
        self.assertEqual(before["last_failure"], after["last_failure"])
        self.assert_locked_for(after, 20 * 60)

    def test_a_later_run_keeps_the_counts_that_went_on(self):
        self.fail_under_axes("editor", EDITOR_IP, 2)
        command("lockout_import_axes")
        with self.settings(AXES_HANDLER=LOCKOUT_HANDLER):
            self.login("editor", EDITOR_IP)
        command("lockout_import_axes")
        [record] = records()
        self.assertEqual(3, record["failures"])
        self.assertTrue(record["locked"])

    @override_settings(AXES_LOCKOUT_PARAMETERS=["ip_address", "username"])
    def test_rows_are_summed_per_identity_and_a_lock_ends_as_axes_would_end_it(self):
        self.fail_under_axes("alice", EDITOR_IP, 2, minutes_ago=10)
        self.fail_under_axes("bob", EDITOR_IP, 2, minutes_ago=5)
        self.assertEqual(
            [
                "Imported 3 records (1 locked out) from 2 Axes access attempts within their "
                "cool-off."
            ],
            command("lockout_import_axes"),
        )
        imported = by_parameters()
        self.assertEqual(
            [(("ip", EDITOR_IP),), (("username", "alice"),), (("username", "bob"),)],
            sorted(imported),
        )
        ip = imported[(("ip", EDITOR_IP),)]
        self.assertEqual(4, ip["failures"])
        # Bob's row alone is under the limit: Axes' sum drops below it when Alice's row, the
        # older, runs out, 20 minutes from now.
        self.assert_locked_for(ip, 20 * 60)
        self.assertLess(ip["first_failure"], ip["last_failure"])
        for username in ("alice", "bob"):
            record = imported[(("username", username),)]
            self.assertEqual((2, False), (record["failures"], record["locked"]))

    def test_times_are_those_of_the_rows_with_or_without_time_zones(self):
        for use_tz in (False, True):
            with self.subTest(USE_TZ=use_tz), self.settings(USE_TZ=use_tz):
                AccessAttempt.objects.all().delete()
                self.fail_under_axes("editor", EDITOR_IP, 3, minutes_ago=10)
                command("lockout_import_axes")
                [record] = records()
                row_time = AccessAttempt.objects.get().attempt_time
                if not use_tz:
                    row_time = timezone.make_aware(row_time)
                self.assertEqual(
                    row_time.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    record["last_failure"],
                )
                self.assert_locked_for(record, 20 * 60)
                client.admin_call("DELETE", "/v1/attempts", all="true")

    def test_rows_past_their_cool_off_are_left_out(self):
        self.fail_under_axes("editor", EDITOR_IP, 3, minutes_ago=31)
        self.fail_under_axes("editor", OTHER_IP, 1, minutes_ago=29)
        self.assertEqual(
            [
                "Imported 1 records (0 locked out) from 1 Axes access attempts within their "
                "cool-off."
            ],
            command("lockout_import_axes"),
        )
        self.assertEqual([{"ip": OTHER_IP}], [record["parameters"] for record in records()])

    def test_callable_settings_are_asked_for_each_row(self):
        self.fail_under_axes("editor", EDITOR_IP, 2)
        self.fail_under_axes("mallory", OTHER_IP, 2)

        def parameters(request, credentials):
            if credentials["username"] == "editor":
                return [["username", "ip_address"]]
            return ["ip_address"]

        def cool_off(request):
            return timedelta(minutes=5 if request.axes_ip_address == OTHER_IP else 30)

        with self.settings(
            AXES_LOCKOUT_PARAMETERS=parameters,
            AXES_COOLOFF_TIME=cool_off,
            AXES_FAILURE_LIMIT=lambda request, credentials: 2,
        ):
            command("lockout_import_axes")
        imported = by_parameters()
        self.assertEqual(
            [(("ip", EDITOR_IP), ("username", "editor")), (("ip", OTHER_IP),)],
            sorted(imported),
        )
        self.assert_locked_for(imported[(("ip", EDITOR_IP), ("username", "editor"))], 30 * 60)
        self.assert_locked_for(imported[(("ip", OTHER_IP),)], 5 * 60)

    def test_a_callable_that_cannot_answer_for_a_row_stops_the_import(self):
        self.fail_under_axes("editor", EDITOR_IP, 1)

        def parameters(request, credentials):
            return [request.session["site"]]

        with self.settings(AXES_LOCKOUT_PARAMETERS=parameters):
            with self.assertRaises(CommandError) as raised:
                command("lockout_import_axes")
        message = str(raised.exception)
        self.assertIn("AXES_LOCKOUT_PARAMETERS could not be evaluated", message)
        self.assertIn("username 'editor', IP 10.0.0.1 (AttributeError", message)
        self.assertNotIn("\n", message)
        self.assertEqual([], records())

    def test_an_unknown_lockout_parameter_is_refused(self):
        self.fail_under_axes("editor", EDITOR_IP, 1)
        with self.settings(AXES_LOCKOUT_PARAMETERS=[["username", "cookie"]]):
            with self.assertRaisesMessage(
                CommandError,
                "AXES_LOCKOUT_PARAMETERS names ['username', 'cookie']: lockout parameters are "
                "combinations of ip_address, username, user_agent",
            ):
                command("lockout_import_axes")

    @override_settings(AXES_COOLOFF_TIME=None)
    def test_a_lock_without_cool_off_lasts_the_longest_the_service_keeps(self):
        self.fail_under_axes("editor", EDITOR_IP, 3, minutes_ago=60 * 24 * 400)
        command("lockout_import_axes")
        [record] = records()
        self.assert_locked_for(record, 365 * 24 * 3600)

    @override_settings(LOCKOUT_SCOPE=TEST_SCOPE)
    def test_records_go_into_the_scope(self):
        self.fail_under_axes("editor", EDITOR_IP, 3)
        self.assertEqual(
            [
                "Imported 1 records (1 locked out) from 1 Axes access attempts within their "
                f"cool-off into scope {TEST_SCOPE}."
            ],
            command("lockout_import_axes"),
        )
        self.assertEqual(1, len(records()))
        with self.settings(LOCKOUT_SCOPE=None):
            self.assertEqual([], records())

    def test_an_unavailable_service_is_one_line_saying_what_was_imported(self):
        self.fail_under_axes("editor", EDITOR_IP, 3)
        with self.settings(LOCKOUT_URL=f"http://127.0.0.1:{services.free_port()}"):
            with self.assertRaises(CommandError) as raised:
                command("lockout_import_axes")
        message = str(raised.exception)
        self.assertTrue(message.startswith("the lockout service is unavailable ("), message)
        self.assertTrue(message.endswith("); nothing was imported"), message)
        self.assertNotIn("\n", message)

    def test_a_refused_batch_stops_the_import_saying_how_far_it_got(self):
        # Long user agents: two batches; the row the service refuses sorts last.
        for n in range(40):
            AccessAttempt.objects.create(
                username="editor",
                ip_address=f"10.0.1.{n}",
                user_agent="x" * 255,
                path_info="/admin/login/",
                failures_since_start=1,
                attempt_time=timezone.now(),
            )
        AccessAttempt.objects.filter(ip_address="10.0.1.39").update(ip_address="nowhere")
        with self.assertRaises(CommandError) as raised:
            command("lockout_import_axes")
        message = str(raised.exception)
        self.assertIn('.parameters.ip: "nowhere" is not a valid IP address', message)
        imported = len(records())
        self.assertGreater(imported, 0)
        self.assertIn(f"; {imported} of 40 records were imported before it stopped", message)

    @override_settings(LOCKOUT_ADMIN_TOKEN=None)
    def test_without_the_admin_token_the_command_says_so(self):
        self.fail_under_axes("editor", EDITOR_IP, 1)
        with self.assertRaisesMessage(CommandError, "LOCKOUT_ADMIN_TOKEN is not set"):
            command("lockout_import_axes")
