"""The model behind the admin's "Access attempts" view (``lockout_axes.admin``).

The attempt records live in the lockout service, not in the database: ``AccessAttempt`` is
unmanaged and its migration creates no table. It gives Django a ContentType, the two permissions
an operator needs (``lockout_axes.view_accessattempt``, ``lockout_axes.delete_accessattempt``;
records come from failed logins, so there is nothing to add or change) and a model to register
in the admin.
"""

from django.db import models


class AccessAttempt(models.Model):
    # Declared rather than left to DEFAULT_AUTO_FIELD, so that no site setting changes the model.
    id = models.AutoField(primary_key=True)

    class Meta:
        managed = False
        default_permissions = ("view", "delete")
