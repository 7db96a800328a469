"""Rolling back: with ``AXES_HANDLER`` set back to Axes' database handler and lockout_axes still
installed, lockout_axes steps aside, and Axes' commands, checks and lockouts work on Axes' rows
as if it were not installed."""

from io import StringIO

from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import TestCase, override_settings

from lockout_axes.checks import check_settings
from lockout_tests.support import DATABASE_HANDLER, LOCKOUT_HANDLER, login_request, records

IP_1, IP_2 = "10.0.0.1", "10.0.0.2"


def command(*args):
    output = StringIO()
    call_command(*args, stdout=output)
    return output.getvalue().splitlines()


@override_settings(AXES_FAILURE_LIMIT=3, AXES_LOCKOUT_PARAMETERS=[["username", "ip_address"]])
class RollbackTestCase(TestCase):
    """AXES_HANDLER back to Axes' database handler, lockout_axes still installed."""

    def fail(self, handler, username, ip, times=1):
        with self.settings(AXES_HANDLER=handler):
            for _ in range(times):
                AxesProxyHandler.user_login_failed(None, {"username": username}, login_request(ip))

    def test_axes_list_attempts_lists_axes_rows(self):
        self.fail(DATABASE_HANDLER, "alice", IP_1, times=2)
        self.fail(LOCKOUT_HANDLER, "bob", IP_2)
        with self.settings(AXES_HANDLER=DATABASE_HANDLER):
            self.assertEqual([f"{IP_1}\talice\t2"], command("axes_list_attempts"))
        with self.settings(AXES_HANDLER=LOCKOUT_HANDLER):
            self.assertEqual([f"{IP_2}\tbob\t1"], command("axes_list_attempts"))

    def test_axes_resets_work_on_axes_rows(self):
        self.fail(DATABASE_HANDLER, "alice", IP_1)
        self.fail(DATABASE_HANDLER, "carol", IP_2)
        self.fail(LOCKOUT_HANDLER, "alice", IP_1)
        with self.settings(AXES_HANDLER=DATABASE_HANDLER):
            self.assertEqual(["1 attempts removed."], command("axes_reset_username", "alice"))
            self.assertEqual([f"{IP_2}\tcarol\t1"], command("axes_list_attempts"))
            self.assertEqual(["1 attempts removed."], command("axes_reset"))
            self.assertFalse(AccessAttempt.objects.exists())
        self.assertEqual(1, len(records()), "the service's record stays")

    def test_the_database_handler_locks_out_with_lockout_axes_installed(self):
        self.fail(DATABASE_HANDLER, "alice", IP_1, times=3)
        with self.settings(AXES_HANDLER=DATABASE_HANDLER):
            self.assertTrue(AxesProxyHandler.is_locked(login_request(IP_1), {"username": "alice"}))
        self.assertEqual([], records())

    @override_settings(LOCKOUT_ON_ERROR="maybe", LOCKOUT_TIMEOUT=0)
    def test_lockout_settings_are_checked_only_while_its_handler_is_used(self):
        with self.settings(AXES_HANDLER=DATABASE_HANDLER):
            self.assertEqual(["lockout_axes.W002"], [error.id for error in check_settings(None)])
            call_command("check")
        with self.settings(AXES_HANDLER=LOCKOUT_HANDLER):
            self.assertEqual(
                ["lockout_axes.E001", "lockout_axes.E002"],
                [error.id for error in check_settings(None)],
            )
