"""Axes' login suite (``tests/test_login.py`` from its sdist, all of DatabaseLoginTestCase) with
LockoutHandler: the attempt count is the service's records; ``reset()`` is Axes' own, which goes
through ``AxesProxyHandler.reset_attempts`` and so through the handler.
"""

from django.test import override_settings
from tests import test_login as upstream

from lockout_tests.support import LOCKOUT_HANDLER, records


@override_settings(AXES_HANDLER=LOCKOUT_HANDLER)
class LockoutLoginTestCase(upstream.DatabaseLoginTestCase):
    def attempt_count(self):
        return len(records())
