"""lockout-axes: Django Axes' login-failure tracking kept in the lockout service.

Set ``AXES_HANDLER = "lockout_axes.handler.LockoutHandler"``; README.md lists the settings,
CHANGELOG.md the changes of each version.
"""

__version__ = "0.3.0"
