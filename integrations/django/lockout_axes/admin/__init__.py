"""The Django admin's pages over the lockout service: "Access attempts", "Access logs" and
"Access failures", where Axes has its own, wherever the site mounts its admin.

While ``AXES_HANDLER`` is ``lockout_axes.handler.LockoutHandler`` (and ``AXES_ENABLE_ADMIN``,
as for Axes' admin), this module, imported by the admin's autodiscovery, replaces Axes' three
admins (empty under this handler: the data is in the service) with lockout's
(``attempts``, ``logs``), and registers ``axes_urls``' redirects under Axes' admin URLs. It
imports ``axes.admin`` first, so that whatever the order of INSTALLED_APPS, Axes' admins are
registered before they are replaced.

With any other handler (a rollback to Axes' database handler, lockout_axes still installed),
it registers nothing: Axes' admins stay as they are. The decision is made once, at start-up,
as for every setting: switching the handler needs a restart.

The models (``lockout_axes.models``) are unmanaged: they give the admin something to register
and Django the permissions to grant; staff keep the rights Axes' permissions gave them
(``permissions``).
"""

import axes.admin  # noqa: F401 -- registers Axes' admins now, so that they can be replaced
from axes.conf import settings
from axes.models import AccessAttempt as AxesAccessAttempt
from axes.models import AccessFailureLog as AxesAccessFailureLog
from axes.models import AccessLog as AxesAccessLog
from django.contrib import admin

from lockout_axes.admin.attempts import AccessAttemptAdmin
from lockout_axes.admin.axes_urls import redirect_admin
from lockout_axes.admin.logs import AccessFailureLogAdmin, AccessLogAdmin
from lockout_axes.models import AccessAttempt, AccessFailureLog, AccessLog

LOCKOUT_HANDLER = "lockout_axes.handler.LockoutHandler"
# Axes' model, lockout's model that stands for it, and lockout's admin of it.
PAGES = (
    (AxesAccessAttempt, AccessAttempt, AccessAttemptAdmin),
    (AxesAccessLog, AccessLog, AccessLogAdmin),
    (AxesAccessFailureLog, AccessFailureLog, AccessFailureLogAdmin),
)


def stands_in_for_axes():
    """Whether lockout's pages replace Axes': only while lockout's handler is in use."""
    return settings.AXES_ENABLE_ADMIN and settings.AXES_HANDLER == LOCKOUT_HANDLER


if stands_in_for_axes():
    for axes_model, lockout_model, model_admin in PAGES:
        if admin.site.is_registered(axes_model):
            admin.site.unregister(axes_model)
        admin.site.register(lockout_model, model_admin)
        admin.site.register(axes_model, redirect_admin(lockout_model))
