"""The unmanaged AccessLog and AccessFailureLog models: no table, only their ContentTypes and
view permissions, for the admin's "Access logs" and "Access failures" pages."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lockout_axes", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="AccessLog",
            fields=[("id", models.AutoField(primary_key=True, serialize=False))],
            options={
                "managed": False,
                "default_permissions": ("view",),
            },
        ),
        migrations.CreateModel(
            name="AccessFailureLog",
            fields=[("id", models.AutoField(primary_key=True, serialize=False))],
            options={
                "managed": False,
                "default_permissions": ("view",),
                "verbose_name": "access failure",
                "verbose_name_plural": "access failures",
            },
        ),
    ]
