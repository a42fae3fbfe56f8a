"""Namespace pages: the list and invites, a namespace's overview, settings, members, jobs
and resources. Every page looks the namespace up through `access.get_for`, so a
stranger gets 404 everywhere; every change happens in one transaction with its event."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from namespaces import events
from namespaces.access import Need, Role, children_for, get_for, visible_to
from namespaces.forms import (
    CronForm,
    ImageForm,
    InviteForm,
    NamespaceForm,
    ObjectForm,
    SSHKeyForm,
    VariableForm,
)
from namespaces.models import (
    Collaborator,
    Cron,
    Image,
    Invite,
    Namespace,
    Object,
    SSHKey,
    StoredFile,
    Variable,
    person,
)

JOBS_SHOWN = 50
TAGGED_LOOKED_AT = 1000  # the newest jobs a tag's list looks through


def page(request, template: str, namespace: Namespace, role: Role, status: int = 200, **context):
    context.update(namespace=namespace, role=role, is_owner=role >= Role.OWNER,
                   is_member=role >= Role.COLLABORATOR, tab=template.split("/")[-1][:-5])  # fmt: skip
    return render(request, template, context, status=status)


@login_required
@never_cache
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "namespaces/index.html", {
        "namespaces": visible_to(request.user),
        "invites": Invite.objects.filter(invitee=request.user).select_related("namespace", "inviter"),
    })  # fmt: skip


@login_required
def create(request: HttpRequest) -> HttpResponse:
    parent = None
    if request.GET.get("parent"):
        parent, _ = get_for(request.user, request.GET["parent"], Need.MANAGE)
    form = NamespaceForm(request.POST or None, owner=request.user, parent=parent)
    if request.method == "POST":
        if form.is_valid():
            with transaction.atomic():
                namespace = form.save()
                if parent:
                    events.namespace_changed(parent, "updated", child=namespace.as_payload())
            messages.success(request, f"Namespace {namespace.path} created.")
            return redirect("namespaces:detail", path=namespace.path)
        return render(
            request, "namespaces/create.html", {"form": form, "parent": parent}, status=400
        )
    return render(request, "namespaces/create.html", {"form": form, "parent": parent})


@login_required
def detail(request: HttpRequest, path: str) -> HttpResponse:
    namespace, role = get_for(request.user, path, Need.VIEW)
    return page(request, "namespaces/detail.html", namespace, role,
                 children=children_for(namespace, role), jobs=_jobs(namespace)[:10])  # fmt: skip


@login_required
def edit(request: HttpRequest, path: str) -> HttpResponse:
    namespace, role = get_for(request.user, path, Need.MANAGE)
    form = NamespaceForm(request.POST or None, instance=namespace, owner=namespace.owner)
    if request.method == "POST":
        if form.is_valid():
            with transaction.atomic():
                form.save()
                events.namespace_changed(namespace, "updated")
            messages.success(request, "Namespace saved.")
            return redirect("namespaces:detail", path=namespace.path)
        return page(request, "namespaces/edit.html", namespace, role, status=400, form=form)
    return page(request, "namespaces/edit.html", namespace, role, form=form)


@login_required
@require_POST
def delete(request: HttpRequest, path: str) -> HttpResponse:
    namespace, _ = get_for(request.user, path, Need.MANAGE)
    if request.POST.get("confirm") != namespace.path:
        messages.error(request, f"Type the namespace's path ({namespace.path}) to delete it.")
        return redirect("namespaces:edit", path=namespace.path)
    with transaction.atomic():
        if namespace.parent:  # its parent's webhooks hear of it; its own are deleted with it
            events.namespace_changed(namespace.parent, "updated", deleted=namespace.as_payload())
        namespace.delete()
    messages.success(request, f"Namespace {path} deleted.")
    return redirect("namespaces:index")


# --- members and invites ----------------------------------------------------------
@login_required
@never_cache
def members(request: HttpRequest, path: str, form: InviteForm | None = None) -> HttpResponse:
    namespace, role = get_for(request.user, path, Need.WORK)
    top = namespace.top
    if form is None and role >= Role.OWNER:
        form = InviteForm(namespace=top, inviter=request.user)
    return page(request, "namespaces/members.html", namespace, role,
                 status=400 if form is not None and form.errors else 200,
                 owner=top.owner, collaborators=top.collaborators.select_related("user"),
                 invites=top.invites.select_related("invitee"), form=form)  # fmt: skip


@login_required
@require_POST
def invite(request: HttpRequest, path: str) -> HttpResponse:
    namespace, _ = get_for(request.user, path, Need.MANAGE)
    form = InviteForm(request.POST, namespace=namespace, inviter=request.user)
    if not form.is_valid():
        return members(request, path, form=form)
    with transaction.atomic():  # the same invite and event whether or not it has an account
        events.invite(events.INVITE_SENT, form.save())
    who = form.cleaned_data["who"]
    messages.success(request, f"If “{who}” has an account here, they are invited: they see "
                              "the invite on their Namespaces page.")  # fmt: skip
    return redirect("namespaces:members", path=namespace.path)


@login_required
@require_POST
def remove_member(request: HttpRequest, path: str, user_id: int) -> HttpResponse:
    namespace, _ = get_for(request.user, path, Need.MANAGE)
    member = get_object_or_404(Collaborator, namespace=namespace.top, user_id=user_id)
    with transaction.atomic():
        member.delete()
        events.namespace_changed(namespace.top, "updated", removed=person(member.user))
    messages.success(request, f"{member.user.display_name} is no longer a collaborator.")
    return redirect("namespaces:members", path=namespace.path)


@login_required
@require_POST
def answer_invite(request: HttpRequest, pk: int, accept: bool) -> HttpResponse:
    pending = get_object_or_404(
        Invite.objects.select_related("namespace", "inviter"), pk=pk, invitee=request.user
    )
    with transaction.atomic():
        if accept:
            Collaborator.objects.get_or_create(namespace=pending.namespace, user=request.user)
        events.invite(events.INVITE_ACCEPTED if accept else events.INVITE_REJECTED, pending)
        pending.delete()
    if accept:
        messages.success(request, f"You joined {pending.namespace.path}.")
        return redirect("namespaces:detail", path=pending.namespace.path)
    messages.success(request, f"You declined the invite to {pending.namespace.path}.")
    return redirect("namespaces:index")


# --- jobs -------------------------------------------------------------------------
def _jobs(namespace: Namespace):
    return namespace.jobs.select_related("endpoint", "user").order_by("-created_at")


@login_required
def jobs(request: HttpRequest, path: str) -> HttpResponse:
    """The namespace's jobs, newest first; `?tag=` keeps those with that tag (what a
    build.tagged event's tag URLs open)."""
    namespace, role = get_for(request.user, path, Need.VIEW)
    listed = _jobs(namespace)
    tag = request.GET.get("tag", "")
    if tag:
        listed = [j for j in listed[:TAGGED_LOOKED_AT] if tag in j.tags]
    return page(request, "namespaces/jobs.html", namespace, role, tag=tag,
                 jobs=listed[:JOBS_SHOWN])  # fmt: skip


@login_required
def job(request: HttpRequest, path: str, job_id: str) -> HttpResponse:
    namespace, role = get_for(request.user, path, Need.VIEW)
    found = _jobs(namespace).filter(pk=job_id).first()
    if found is None:
        raise Http404("No such job in this namespace.")
    return page(request, "namespaces/job.html", namespace, role, job=found)


# --- resources --------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    name: str  # the payload key, as Djinn's events have it
    model: type
    form: type
    label: str
    plural: str
    url: str


KINDS = {
    "variables": Kind("variable", Variable, VariableForm, "variable", "Variables", "variables"),
    "keys": Kind("key", SSHKey, SSHKeyForm, "SSH key", "SSH keys", "keys"),
    "cron": Kind("cron", Cron, CronForm, "cron job", "Cron jobs", "cron"),
    "images": Kind("image", Image, ImageForm, "image", "Images", "images"),
    "objects": Kind("object", Object, ObjectForm, "object", "Objects", "objects"),
}


def _kind(slug: str) -> Kind:
    if slug not in KINDS:
        raise Http404("No such page.")
    return KINDS[slug]


@login_required
@never_cache
def resources(request: HttpRequest, path: str, kind: str) -> HttpResponse:
    spec = _kind(kind)
    namespace, role = get_for(request.user, path, Need.WORK)
    form = spec.form(request.POST or None, request.FILES or None, namespace=namespace,
                     author=request.user)  # fmt: skip
    if request.method == "POST":
        if form.is_valid():
            with transaction.atomic():
                item = form.save()
                events.resource(spec.name, item, events.CREATED)
            messages.success(request, f"The {spec.label} {item} was created.")
            return redirect("namespaces:resources", path=namespace.path, kind=kind)
    return page(request, "namespaces/resources.html", namespace, role,
                 status=400 if form.errors else 200, spec=spec, kind=kind, form=form,
                 items=spec.model.objects.filter(namespace=namespace))  # fmt: skip


@login_required
def edit_resource(request: HttpRequest, path: str, kind: str, pk: int) -> HttpResponse:
    spec = _kind(kind)
    namespace, role = get_for(request.user, path, Need.WORK)
    item = get_object_or_404(spec.model, namespace=namespace, pk=pk)
    form = spec.form(request.POST or None, instance=item, namespace=namespace, author=request.user)
    if request.method == "POST":
        if form.is_valid():
            with transaction.atomic():
                form.save()
                events.resource(spec.name, item, events.UPDATED)
            messages.success(request, f"The {spec.label} {item} was saved.")
            return redirect("namespaces:resources", path=namespace.path, kind=kind)
    return page(request, "namespaces/resource_edit.html", namespace, role,
                 status=400 if form.errors else 200, spec=spec, kind=kind, form=form, item=item)  # fmt: skip


@login_required
@require_POST
def delete_resource(request: HttpRequest, path: str, kind: str, pk: int) -> HttpResponse:
    spec = _kind(kind)
    namespace, _ = get_for(request.user, path, Need.WORK)
    item = get_object_or_404(spec.model, namespace=namespace, pk=pk)
    with transaction.atomic():
        events.resource(spec.name, item, events.DELETED)  # its payload, before it is gone
        item.delete()
    messages.success(request, f"The {spec.label} {item} was deleted.")
    return redirect("namespaces:resources", path=namespace.path, kind=kind)


@login_required
def download(request: HttpRequest, path: str, kind: str, pk: int) -> FileResponse:
    spec = _kind(kind)
    if not issubclass(spec.model, StoredFile):
        raise Http404("No such page.")
    namespace, _ = get_for(request.user, path, Need.WORK)
    item = get_object_or_404(spec.model, namespace=namespace, pk=pk)
    response = FileResponse(item.file.open("rb"), as_attachment=True, filename=item.name)
    response["Content-Type"] = "application/octet-stream"  # never rendered by the browser
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
