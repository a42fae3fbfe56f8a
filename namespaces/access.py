"""Who may do what in a namespace. Roles (docs/namespaces.md, "Who may do what"):

- owner: everything: the namespace itself, sub-namespaces, members and invites, webhooks,
  resources, jobs;
- collaborator (accepted an invite to the root namespace): resources and jobs, and sees
  the members; not webhooks, invites or the namespace's settings;
- viewer (any signed-in user, of an internal namespace only): its overview and its jobs;
- anyone else: 404 on every page and action, as if the namespace did not exist.

A superuser acts as the owner everywhere; other staff work through the admin.
"""

from __future__ import annotations

import enum

from django.db.models import Q, QuerySet
from django.http import Http404
from django.urls import reverse

from namespaces.models import Collaborator, Namespace


class Role(enum.IntEnum):
    NONE = 0
    VIEWER = 1
    COLLABORATOR = 2
    OWNER = 3


class Need(enum.IntEnum):
    """What a page or action needs, as the least role that has it."""

    VIEW = Role.VIEWER
    WORK = Role.COLLABORATOR  # resources, jobs, the member list
    MANAGE = Role.OWNER  # webhooks, invites, members, settings


def role(user, namespace: Namespace) -> Role:
    if not user.is_authenticated or not user.is_active:
        return Role.NONE
    top = namespace.top
    if user.is_superuser or top.owner_id == user.pk:
        return Role.OWNER
    if Collaborator.objects.filter(namespace=top, user=user).exists():
        return Role.COLLABORATOR
    if namespace.visibility == Namespace.Visibility.INTERNAL:
        return Role.VIEWER
    return Role.NONE


def can(user, namespace: Namespace, need: Need) -> bool:
    return role(user, namespace) >= need


def get_for(user, path: str, need: Need) -> tuple[Namespace, Role]:
    """The namespace at `path` if `user` has `need` there; otherwise 404, whether it exists
    or not, so a stranger learns nothing."""
    namespace = (
        Namespace.objects.select_related("owner", "root", "root__owner", "parent")
        .filter(path=path)
        .first()
    )
    if namespace is None:
        raise Http404("No such namespace.")
    found = role(user, namespace)
    if found < need:
        raise Http404("No such namespace.")
    return namespace, found


def children_for(namespace: Namespace, found: Role) -> QuerySet[Namespace]:
    """The sub-namespaces of `namespace` that whoever has role `found` there may open:
    every one for its members (a member of the root is one of each), only the internal
    ones for a viewer (as `role` says of each), so a private one's path and description
    stay unknown to them."""
    children = namespace.children.all()
    if found >= Role.COLLABORATOR:
        return children
    return children.filter(visibility=Namespace.Visibility.INTERNAL)


def visible_to(user) -> QuerySet[Namespace]:
    """Namespaces the user belongs to (owned or collaborating, through their roots)."""
    roots = Q(owner=user) | Q(collaborators__user=user)
    belongs = Q(root__isnull=True) & roots
    through_root = Q(root__owner=user) | Q(root__collaborators__user=user)
    return Namespace.objects.filter(belongs | through_root).distinct().select_related("owner")


def member_namespace(user, path: str) -> Namespace | None:
    """For the job API: the namespace a member may submit into, or None (unknown and
    not-a-member look the same)."""
    namespace = Namespace.objects.select_related("root").filter(path=path).first()
    if namespace is None or role(user, namespace) < Role.COLLABORATOR:
        return None
    return namespace


def label(key: str) -> str | None:
    """The path of the namespace the engine keys as `key` (its id)."""
    return (
        Namespace.objects.filter(pk=int(key)).values_list("path", flat=True).first()
        if key.isdigit()
        else None
    )


def find(text: str) -> str | None:
    """A namespace's engine key from its path or its id, as staff type it in the admin."""
    found = Namespace.objects.filter(path=text).first() or (
        Namespace.objects.filter(pk=int(text)).first() if text.isdigit() else None
    )
    return found.key if found else None


def owner_email(key: str) -> str:
    """The email of the owner of the namespace keyed `key` (its top namespace's owner),
    told when the namespace's webhooks fail."""
    if not key.isdigit():
        return ""
    found = Namespace.objects.filter(pk=int(key)).select_related("owner", "root__owner").first()
    return (found.top.owner.email or "") if found and found.top.owner_id else ""


def webhook_page(webhook) -> str:
    """Where a namespace's owner sees one of its webhooks."""
    path = label(webhook.namespace)
    return reverse("namespaces:webhook", args=[path, webhook.pk]) if path else ""
