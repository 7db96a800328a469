"""``axes_list_attempts`` for the lockout service: Axes' command reads its own database table,
this one lists the service's attempt records (of ``LOCKOUT_SCOPE``), one per line as
``IP<TAB>USERNAME<TAB>FAILURES``, ``None`` for a field the record does not hold. While
``AXES_HANDLER`` is not LockoutHandler (a site rolled back to Axes' own handler), it is Axes'
command: Axes' rows, as Axes prints them.

Usernames are chosen by whoever tries to log in: control characters (and backslashes, so that
the output stays unambiguous) are printed as Python escapes, never raw to the terminal. The
service's errors are one line (service_errors.py).
"""

from axes.management.commands import axes_list_attempts

from lockout_axes import client, handler
from lockout_axes.management.service_errors import one_line_errors


@one_line_errors
class Command(axes_list_attempts.Command):
    help = "List the lockout service's attempt records (Axes' rows under another AXES_HANDLER)"

    def handle(self, *args, **options):
        if not handler.in_use():
            return super().handle(*args, **options)
        for record in client.iter_attempts():
            parameters = record["parameters"]
            fields = (
                parameters.get("ip"),
                parameters.get("username"),
                record["failures"],
            )
            self.stdout.write("\t".join(_printable(field) for field in fields))
        return None


def _printable(value):
    text = str(value)
    return "".join(
        char if char.isprintable() and char != "\\" else repr(char)[1:-1] for char in text
    )
