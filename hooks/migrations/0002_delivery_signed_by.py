"""Deliveries without a webhook (job callbacks) name the webhook whose secret signs them
instead of holding a copy of that secret."""

import django.db.models.deletion
from django.db import migrations, models


def point_at_the_signing_webhook(apps, schema_editor):
    """A stored copy becomes a reference to the webhook holding that secret (the owner's
    notification webhook); a copy no webhook holds any more is dropped (unsigned)."""
    Delivery = apps.get_model("hooks", "Delivery")
    Webhook = apps.get_model("hooks", "Webhook")
    copies = Delivery.objects.exclude(target_secret="").values_list("target_secret", flat=True)
    for secret in set(copies):
        signer = Webhook.objects.filter(secret=secret).order_by("pk").first()
        if signer is not None:
            Delivery.objects.filter(target_secret=secret).update(signed_by=signer)


class Migration(migrations.Migration):
    dependencies = [
        ("hooks", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="signed_by",
            field=models.ForeignKey(
                blank=True,
                help_text="Whose secret signs a delivery without a webhook (a job's callback).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="hooks.webhook",
            ),
        ),
        migrations.RunPython(point_at_the_signing_webhook, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="delivery",
            name="target_secret",
        ),
    ]
