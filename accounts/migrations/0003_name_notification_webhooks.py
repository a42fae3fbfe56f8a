"""Users' notification webhooks get their owner in their name (the admin lists every
user's; they were all called "Notification webhook")."""

from django.db import migrations


def name_them(apps, schema_editor):
    Webhook = apps.get_model("hooks", "Webhook")
    for hook in Webhook.objects.filter(scope="user", name="Notification webhook").select_related("owner"):
        if hook.owner_id:
            hook.name = f"Notifications of {hook.owner.email or hook.owner.username}"[:100]
            hook.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_api_token_names"),
        ("hooks", "0005_webhook_djinn_headers"),
    ]

    operations = [migrations.RunPython(name_them, migrations.RunPython.noop)]
