"""Axes' generic handler tests (``tests/test_handlers.py`` from its sdist) with LockoutHandler:
all of AxesHandlerTestCase, and AxesHandlerBaseTestCase's ``check_handler`` and log checks as
upstream runs them for the database handler.
"""

from datetime import timedelta
from unittest.mock import patch

from axes.handlers.proxy import AxesProxyHandler
from django.test import override_settings
from tests import test_handlers as upstream

from lockout_tests.support import LOCKOUT_HANDLER, records


@override_settings(AXES_HANDLER=LOCKOUT_HANDLER)
class LockoutHandlerTestCase(upstream.AxesHandlerTestCase):
    pass


# check_handler sleeps the cool-off.
@override_settings(AXES_HANDLER=LOCKOUT_HANDLER, AXES_COOLOFF_TIME=timedelta(seconds=1))
class LockoutHandlerBaseTestCase(upstream.AxesHandlerBaseTestCase):
    @override_settings(AXES_RESET_ON_SUCCESS=True)
    def test_handler(self):
        self.check_handler()

    @override_settings(AXES_RESET_ON_SUCCESS=False)
    def test_handler_without_reset(self):
        self.check_handler()

    @override_settings(AXES_LOCK_OUT_AT_FAILURE=False)
    def test_handler_without_lockout(self):
        self.check_handler()

    @override_settings(AXES_FAILURE_LIMIT=lambda *args: 3)
    def test_handler_callable_failure_limit(self):
        self.check_handler()

    @override_settings(AXES_FAILURE_LIMIT="tests.base.custom_failure_limit")
    def test_handler_str_failure_limit(self):
        self.check_handler()

    @override_settings(AXES_FAILURE_LIMIT=None)
    def test_handler_invalid_failure_limit(self):
        with self.assertRaises(TypeError):
            self.check_handler()

    @patch("lockout_axes.handler.log")
    def test_empty_request(self, log):
        self.check_empty_request(log, "LockoutHandler")

    @patch("lockout_axes.handler.log")
    def test_whitelist(self, log):
        self.check_whitelist(log)
        self.assertEqual([], records())

    @override_settings(AXES_LOCKOUT_PARAMETERS=["username"])
    @patch("lockout_axes.handler.log")
    def test_user_login_failed_only_user_failures_with_none_username(self, log):
        credentials = {"username": None, "password": "test"}
        AxesProxyHandler.user_login_failed(None, credentials, self.request)
        self.assertEqual([], records())
        log.warning.assert_called_with(
            "AXES: Username is None and username is the only one lockout parameter, "
            "new record will NOT be created."
        )

    def test_user_login_failed_with_none_username(self):
        """The IP identity is counted; a None username forms no username identity."""
        credentials = {"username": None, "password": "test"}
        AxesProxyHandler.user_login_failed(None, credentials, self.request)
        self.assertEqual(
            [({"ip": self.ip_address}, 1)],
            [(record["parameters"], record["failures"]) for record in records()],
        )

    def test_handler_remove_out_of_limit_failure_logs(self):
        self.assertEqual(
            0, AxesProxyHandler.remove_out_of_limit_failure_logs(username=self.username)
        )
