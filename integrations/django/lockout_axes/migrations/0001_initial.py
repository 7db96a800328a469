"""The unmanaged AccessAttempt model: no table, only its ContentType and permissions."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="AccessAttempt",
            fields=[("id", models.AutoField(primary_key=True, serialize=False))],
            options={"managed": False, "default_permissions": ("view", "delete")},
        ),
    ]
