"""Every refusal of the API is JSON: {"error": "<what is wrong>", "field": "<where>"}."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


class ApiError(Exception):
    def __init__(self, message: str, field: str = "", status: int = 400):
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


def response(message: str, status: int, field: str = "") -> JsonResponse:
    return JsonResponse({"error": message, **({"field": field} if field else {})}, status=status)


def from_pydantic(errors: list[dict]) -> ApiError:
    """The first of pydantic's errors, worded for a person, with its dotted location."""
    first = errors[0]
    where = ".".join(str(step) for step in first.get("loc", ()) if step not in ("body",))
    return ApiError(f"{where}: {first.get('msg', 'invalid')}." if where else first["msg"], where)


def handle_api_error(request: HttpRequest, exc: ApiError) -> JsonResponse:
    return response(exc.message, exc.status, exc.field)
