"""The models behind the admin's lockout pages (``lockout_axes.admin``).

The attempt records and the access log live in the lockout service, not in the database: these
models are unmanaged and their migrations create no table. Each gives Django a ContentType, the
permissions an operator is granted, and a model to register in the admin, under Axes' names:

- ``AccessAttempt``: ``view_accessattempt`` and ``delete_accessattempt`` (records come from
  failed logins, so there is nothing to add or change);
- ``AccessLog`` and ``AccessFailureLog``: ``view_accesslog`` and ``view_accessfailurelog`` (the
  service's access log is read-only here; ``axes_reset_logs`` trims it).
"""

from django.db import models


class AccessAttempt(models.Model):
    # Declared rather than left to DEFAULT_AUTO_FIELD, so that no site setting changes the model.
    id = models.AutoField(primary_key=True)

    class Meta:
        managed = False
        default_permissions = ("view", "delete")


class AccessLog(models.Model):
    id = models.AutoField(primary_key=True)

    class Meta:
        managed = False
        default_permissions = ("view",)


class AccessFailureLog(models.Model):
    id = models.AutoField(primary_key=True)

    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "access failure"
        verbose_name_plural = "access failures"
