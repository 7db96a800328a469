"""Management commands of lockout_axes."""
