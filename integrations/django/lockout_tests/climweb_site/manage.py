"""Climweb's ``climweb`` console script (``manage.main``) for this site:
``python -m lockout_tests.climweb_site.manage COMMAND``."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lockout_tests.climweb_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
