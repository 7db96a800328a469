"""Tests of lockout_axes against a real redis-server, a real `lockout serve`, Django and Axes.

Not called ``tests``: that name belongs to Axes' own test package, which these tests import.
"""
