"""``axes_list_attempts``, which replaces Axes' own when lockout_axes comes first."""
