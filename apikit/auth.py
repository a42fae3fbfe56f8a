"""The APIs' one token auth, as django-ninja auth: an API token (accounts.ApiToken) sent
as `Authorization: Bearer <token>` or, as RunPod's curl examples send it, bare."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from accounts.models import ApiToken


class TokenAuth(HttpBearer):
    def __call__(self, request: HttpRequest) -> ApiToken | None:
        # HttpBearer would insist on "Bearer "; from_header takes the bare token too.
        return self.authenticate(request, request.headers.get("Authorization", ""))

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        """The token of the header, marked used; its owner becomes `request.user`."""
        found = ApiToken.objects.from_header(token)
        if found is None:
            return None
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        request.user = found.user
        return found
