"""Django application config: installing the app provides the ``axes_list_attempts`` and
``lockout_import_axes`` commands and the ``lockout`` system checks (checks.py)."""

from django.apps import AppConfig


class LockoutAxesConfig(AppConfig):
    name = "lockout_axes"
    verbose_name = "Lockout"

    def ready(self):
        from lockout_axes import checks

        checks.register()
