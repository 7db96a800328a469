"""The lockout service's errors in management commands as one line: ``CommandError`` with the
message that says what fixes it (exit status 1), never a traceback.

Axes' own ``axes_reset*`` commands are wrapped here (lockout_axes is installed before axes, so
its commands of the same names win). They run no system checks: the command's own error names
the one setting it needs, where the checks would list every issue of the site.
"""

from django.core.management.base import CommandError

from lockout_axes import client


def one_line_errors(command_class):
    """``command_class`` with every LockoutError of its ``handle`` raised as a CommandError."""

    class Command(command_class):
        requires_system_checks = []

        def handle(self, *args, **options):
            try:
                return super().handle(*args, **options)
            except client.LockoutError as error:
                raise CommandError(str(error)) from None

    Command.__doc__ = command_class.__doc__
    return Command
