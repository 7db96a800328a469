"""``lockout_import_axes [--dry-run]``: moves Axes' database rows (``AccessAttempt``) into the
lockout service (of ``LOCKOUT_SCOPE``), so that a site switching from Axes' database handler
keeps its lockouts in force and its counts (``lockout_axes.axes_import`` says how rows become
records). Running it again changes nothing: the service keeps the higher count and the later
expiry of what it has and what is imported. Axes' rows stay, for a rollback.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from lockout_axes import axes_import


class Command(BaseCommand):
    help = "Import Axes' database access attempts (failure counts and lockouts) into lockout"

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check the records with the service and print what would be imported, "
            "writing nothing",
        )

    def handle(self, *args, dry_run=False, **options):
        try:
            outcome = axes_import.import_rows(dry_run=dry_run)
        except (axes_import.ImportRefused, ImproperlyConfigured) as error:
            raise CommandError(" ".join(str(error).split())) from None
        verb = "Would import" if dry_run else "Imported"
        self.stdout.write(
            f"{verb} {outcome.records} records ({outcome.locked} locked out) from "
            f"{outcome.rows} Axes access attempts within their cool-off{_scope_note()}."
        )
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")


def _scope_note():
    scope = getattr(settings, "LOCKOUT_SCOPE", None)
    return f" into scope {scope}" if scope else ""
