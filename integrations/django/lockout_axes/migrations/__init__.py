"""Migrations of lockout_axes: its one model is unmanaged, so none creates a table."""
