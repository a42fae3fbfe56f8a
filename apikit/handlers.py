"""A NinjaAPI of the hub answers every refusal as the kit's JSON: an ApiError from an
operation, a missing or unknown token, a parameter pydantic refused, ninja's HttpError."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from apikit.errors import ApiError, Wording, render


def install(api: NinjaAPI, wording: Wording) -> None:
    def api_error(request: HttpRequest, exc: ApiError) -> JsonResponse:
        return render(exc)

    def unauthorized(request: HttpRequest, exc: AuthenticationError) -> JsonResponse:
        return render(ApiError(wording.unauthorized, status=401))

    def invalid(request: HttpRequest, exc: NinjaValidationError) -> JsonResponse:
        return render(wording.invalid(list(exc.errors)))

    def http_error(request: HttpRequest, exc: HttpError) -> JsonResponse:
        return render(ApiError(str(exc), status=exc.status_code))

    api.add_exception_handler(ApiError, api_error)
    api.add_exception_handler(AuthenticationError, unauthorized)
    api.add_exception_handler(NinjaValidationError, invalid)
    api.add_exception_handler(HttpError, http_error)
