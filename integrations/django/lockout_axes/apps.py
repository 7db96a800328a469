"""Django application config: installing the app provides the ``axes_list_attempts`` and
``lockout_import_axes`` commands and system checks that find an invalid LOCKOUT_ON_ERROR or
LOCKOUT_TIMEOUT at start-up, not during the first outage. The checks run only while
``AXES_HANDLER`` is LockoutHandler: under another handler the settings are not used."""

from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from lockout_axes import client

SETTING_CHECKS = (
    ("lockout_axes.E001", client.locked_when_unavailable),
    ("lockout_axes.E002", client.timeout_seconds),
)


class LockoutAxesConfig(AppConfig):
    name = "lockout_axes"
    verbose_name = "Lockout"

    def ready(self):
        checks.register(check_settings)


def check_settings(app_configs, **kwargs):
    # Not imported with this module: the handler imports Axes' models, which need the registry.
    from lockout_axes.handler import in_use

    if not in_use():
        return []
    errors = []
    for check_id, read_setting in SETTING_CHECKS:
        try:
            read_setting()
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id=check_id))
    return errors
