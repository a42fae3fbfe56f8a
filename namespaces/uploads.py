"""What a namespace may upload: one image or object at most NAMESPACE_FILE_LIMIT bytes,
all of a namespace's images and objects together at most NAMESPACE_STORAGE_QUOTA (0: no
quota).

The form checks the file it got (its exact size); UploadLimitMiddleware refuses a
larger body by its Content-Length before any of it is read, so an oversized upload is
neither streamed to a temporary file nor parsed (Django's CSRF check reads a POST's
form, files and all, before the view runs). A WSGI server hands Django at most
Content-Length bytes, so the header cannot understate the body."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.urls import Resolver404, resolve

from namespaces.access import Need, get_for
from namespaces.models import Image, Namespace, Object

FILE_KINDS = ("images", "objects")
FORM_OVERHEAD = 64 * 1024  # the name, the CSRF token and multipart's boundaries


def file_limit() -> int:
    return settings.NAMESPACE_FILE_LIMIT


def used(namespace: Namespace) -> int:
    """Bytes the namespace's images and objects take together."""
    return sum(
        model.objects.filter(namespace=namespace).aggregate(total=Sum("size"))["total"] or 0
        for model in (Image, Object)
    )


def over_quota(namespace: Namespace, incoming: int) -> str | None:
    """Why `incoming` more bytes would not fit the namespace's quota, or None."""
    quota = settings.NAMESPACE_STORAGE_QUOTA
    if quota <= 0:
        return None
    taken = used(namespace)
    if taken + incoming <= quota:
        return None
    return (
        f"This namespace's images and objects take {filesizeformat(taken)} of its "
        f"{filesizeformat(quota)} (NAMESPACE_STORAGE_QUOTA); delete some before uploading "
        f"{filesizeformat(incoming)} more."
    )


class UploadLimitMiddleware:
    """413 for an image or object upload too big for the limit or the namespace's quota,
    judged by its Content-Length before the body is read. Place after
    AuthenticationMiddleware: the quota is told only to the namespace's members."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.refusal(request) or self.get_response(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        path = _upload_target(request)
        if path is None:
            return None
        length = _content_length(request)
        if length > file_limit() + FORM_OVERHEAD:
            return _too_large(
                f"The upload is {filesizeformat(length)}; the limit is "
                f"{filesizeformat(file_limit())} (NAMESPACE_FILE_LIMIT)."
            )
        try:
            namespace, _ = get_for(request.user, path, Need.WORK)
        except Http404:
            return None  # the view answers strangers, as it does every time
        reason = over_quota(namespace, max(0, length - FORM_OVERHEAD))
        return _too_large(reason) if reason else None


def _upload_target(request: HttpRequest) -> str | None:
    """The namespace path of an image or object upload, or None for any other request."""
    if request.method != "POST":
        return None
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    if match.view_name != "namespaces:resources" or match.kwargs.get("kind") not in FILE_KINDS:
        return None
    return match.kwargs["path"]


def _content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0  # Django reads no body then


def _too_large(reason: str) -> HttpResponse:
    return HttpResponse(
        f"{reason} Nothing was saved.\n", status=413, content_type="text/plain; charset=utf-8"
    )
