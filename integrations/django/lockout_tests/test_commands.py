"""Axes' management commands against the service: the ``axes_reset*`` commands are Axes' own and
go through the handler; ``axes_list_attempts`` is lockout_axes' (installed before axes)."""

from io import StringIO

from django.core.management import call_command, get_commands
from django.test import SimpleTestCase, override_settings

from lockout_tests.support import LOCKOUT_HANDLER, TEST_SCOPE, fail


def command(*args):
    output = StringIO()
    call_command(*args, stdout=output)
    return output.getvalue().splitlines()


@override_settings(
    AXES_HANDLER=LOCKOUT_HANDLER, AXES_LOCKOUT_PARAMETERS=[["username", "ip_address"]]
)
class CommandsTestCase(SimpleTestCase):
    def test_axes_list_attempts_is_lockout_axes_command(self):
        self.assertEqual("lockout_axes", get_commands()["axes_list_attempts"])

    def test_list_attempts(self):
        fail("alice", "10.0.0.1", times=2)
        fail("bob", "10.0.0.2")
        self.assertEqual(
            ["10.0.0.1\talice\t2", "10.0.0.2\tbob\t1"],
            sorted(command("axes_list_attempts")),
        )

    @override_settings(AXES_LOCKOUT_PARAMETERS=["ip_address"])
    def test_list_attempts_shows_absent_fields_as_none(self):
        fail("alice", "10.0.0.1")
        self.assertEqual(["10.0.0.1\tNone\t1"], command("axes_list_attempts"))

    def test_list_attempts_escapes_control_characters(self):
        fail("eve\t\n\x1b[2J\\x", "10.0.0.9")
        output = command("axes_list_attempts")
        self.assertEqual(["10.0.0.9\teve\\t\\n\\x1b[2J\\\\x\t1"], output)

    def test_list_attempts_of_the_scope_only(self):
        fail("alice", "10.0.0.1")
        with self.settings(LOCKOUT_SCOPE=TEST_SCOPE):
            fail("bob", "10.0.0.2")
            self.assertEqual(["10.0.0.2\tbob\t1"], command("axes_list_attempts"))
        self.assertEqual(["10.0.0.1\talice\t1"], command("axes_list_attempts"))

    def test_resets(self):
        self.assertEqual(["No attempts found."], command("axes_reset"))
        for username in ("alice", "bob"):
            for ip_address in ("10.0.0.1", "10.0.0.2"):
                fail(username, ip_address)
        self.assertEqual(
            ["1 attempts removed."],
            command("axes_reset_ip_username", "10.0.0.1", "alice"),
        )
        self.assertEqual(["1 attempts removed."], command("axes_reset_username", "alice"))
        self.assertEqual(["No attempts found."], command("axes_reset_username", "alice"))
        self.assertEqual(["2 attempts removed."], command("axes_reset_ip", "10.0.0.1", "10.0.0.2"))
        fail("carol", "10.0.0.3")
        self.assertEqual(["1 attempts removed."], command("axes_reset"))
        self.assertEqual([], command("axes_list_attempts"))

    def test_reset_logs(self):
        fail("alice", "10.0.0.1", times=3)
        self.assertEqual(["No logs found."], command("axes_reset_logs"))
        self.assertEqual(["3 logs removed."], command("axes_reset_logs", "--age", "0"))
        fail("alice", "10.0.0.1")
        self.assertEqual(["1 logs removed."], command("axes_reset_failure_logs", "--age", "0"))
        self.assertEqual(["No logs found."], command("axes_reset_failure_logs", "--age", "0"))
