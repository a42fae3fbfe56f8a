"""Staff's view of namespaces: members, invites and resources. A masked variable's value
is never shown here either. Namespace webhooks are in the engine's Webhook admin."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction

from namespaces import cron, events
from namespaces.forms import JobInputField, VariableValueForm
from namespaces.models import Collaborator, Cron, Image, Invite, Namespace, Object, SSHKey, Variable


class CollaboratorInline(admin.TabularInline):
    model = Collaborator
    extra = 0
    autocomplete_fields = ["user"]


class InviteInline(admin.TabularInline):
    model = Invite
    fk_name = "namespace"
    extra = 0
    readonly_fields = ["inviter", "email", "invitee", "created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # invites are sent by owners, on their page


@admin.register(Namespace)
class NamespaceAdmin(admin.ModelAdmin):
    list_display = ["path", "owner", "visibility", "builds", "created_at"]
    list_filter = ["visibility"]
    search_fields = ["path", "description", "owner__email"]
    readonly_fields = ["path", "root", "builds", "created_at"]
    fields = ["name", "path", "parent", "root", "owner", "description", "visibility", "builds",
              "created_at"]  # fmt: skip
    autocomplete_fields = ["owner", "parent"]
    inlines = [CollaboratorInline, InviteInline]

    def get_readonly_fields(self, request, obj=None):
        # name and parent make the path, which the pages link by: fixed once created
        fixed = ["name", "parent"] if obj else []
        return [*self.readonly_fields, *fixed]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.root = obj.parent.top if obj.parent else None
            obj.path = f"{obj.parent.path}/{obj.name}" if obj.parent else obj.name
            if obj.parent:
                obj.owner = obj.parent.top.owner
        super().save_model(request, obj, form, change)


class ResourceAdmin(admin.ModelAdmin):
    """Changes made here are events too, as on the members' pages."""

    kind = ""

    def save_model(self, request, obj, form, change) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            events.resource(self.kind, obj, events.UPDATED if change else events.CREATED)

    def delete_model(self, request, obj) -> None:
        with transaction.atomic():
            events.resource(self.kind, obj, events.DELETED)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for obj in queryset.select_related("namespace"):
                self.delete_model(request, obj)


class VariableAdminForm(VariableValueForm):
    """The members' rule here too: unticking *masked* needs the value given again."""

    class Meta:
        model = Variable
        fields = ["namespace", "key", "value", "masked"]


@admin.register(Variable)
class VariableAdmin(ResourceAdmin):
    kind = "variable"
    form = VariableAdminForm
    list_display = ["key", "namespace", "shown_value", "masked", "updated_at"]
    list_filter = ["masked"]
    search_fields = ["key", "namespace__path"]
    readonly_fields = ["shown_value", "author", "created_at", "updated_at"]
    fields = ["namespace", "key", "shown_value", "value", "masked", "author", "created_at",
              "updated_at"]  # fmt: skip

    @admin.display(description="value")
    def shown_value(self, obj: Variable) -> str:
        return obj.shown_value

    def has_add_permission(self, request) -> bool:
        return False  # values are set by members on the namespace's page (write-only there)


@admin.register(SSHKey)
class SSHKeyAdmin(ResourceAdmin):
    kind = "key"
    list_display = ["name", "namespace", "fingerprint", "created_at"]
    search_fields = ["name", "namespace__path", "fingerprint"]
    readonly_fields = ["namespace", "fingerprint", "public_key", "author", "created_at"]
    fields = readonly_fields[:1] + ["name"] + readonly_fields[1:]

    def has_add_permission(self, request) -> bool:
        return False


class CronAdminForm(forms.ModelForm):
    input = JobInputField(required=False, initial=dict, widget=forms.Textarea(attrs={"rows": 3}))

    class Meta:
        model = Cron
        fields = ["name", "endpoint", "every", "expression", "input"]


@admin.register(Cron)
class CronAdmin(ResourceAdmin):
    kind = "cron"
    form = CronAdminForm
    list_display = ["name", "namespace", "every", "cron", "endpoint", "next_run"]
    list_filter = ["every"]
    search_fields = ["name", "namespace__path"]
    readonly_fields = ["namespace", "next_run", "author", "created_at"]
    fields = ["namespace", "name", "endpoint", "every", "expression", "input", "next_run",
              "author", "created_at"]  # fmt: skip

    def save_model(self, request, obj, form, change) -> None:
        if {"endpoint", "input"} & set(form.changed_data):
            obj.author = request.user  # what it runs is theirs now: it runs as them
        with transaction.atomic():
            obj.save()
            cron.sync(obj)
            events.resource(self.kind, obj, events.UPDATED if change else events.CREATED)

    def has_add_permission(self, request) -> bool:
        return False  # members add them on the namespace's page


class StoredFileAdmin(ResourceAdmin):
    list_display = ["name", "namespace", "size", "content_type", "created_at"]
    search_fields = ["name", "namespace__path"]
    readonly_fields = ["namespace", "file", "size", "content_type", "author", "created_at"]
    fields = ["namespace", "name", "file", "size", "content_type", "author", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Image)
class ImageAdmin(StoredFileAdmin):
    kind = "image"


@admin.register(Object)
class ObjectAdmin(StoredFileAdmin):
    kind = "object"
