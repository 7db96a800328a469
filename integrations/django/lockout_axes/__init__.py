"""lockout-axes: Django Axes' login-failure tracking kept in the lockout service.

Set ``AXES_HANDLER = "lockout_axes.handler.LockoutHandler"``; README.md lists the settings.
"""
