"""Axes' ``axes_reset``; the service's errors as one line (service_errors.py)."""

from axes.management.commands.axes_reset import Command as AxesCommand

from lockout_axes.management.service_errors import one_line_errors

Command = one_line_errors(AxesCommand)
