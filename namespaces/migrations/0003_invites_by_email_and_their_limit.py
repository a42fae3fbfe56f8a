import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


def typed_as_their_address(apps, schema_editor):
    """Invites sent before: their address is the invitee's."""
    Invite = apps.get_model("namespaces", "Invite")
    for invite in Invite.objects.select_related("invitee"):
        invite.email = invite.invitee.email
        invite.save(update_fields=["email"])


class Migration(migrations.Migration):
    dependencies = [
        ("namespaces", "0002_cron_images_objects"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SentInvite",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sent_at", models.DateTimeField(db_index=True)),
                ("inviter", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.RemoveConstraint(model_name="invite", name="one_pending_invite"),
        migrations.AddField(
            model_name="invite",
            name="email",
            field=models.EmailField(default="", help_text="The address as the inviter typed it.", max_length=254),
            preserve_default=False,
        ),
        migrations.RunPython(typed_as_their_address, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="invite",
            name="invitee",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="invites", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name="invite",
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower("email"), models.F("namespace"), name="one_invite_per_address"),
        ),
    ]
