"""The user's Jobs pages, mounted at /jobs/ (the job API itself is under /v2/)."""

from django.urls import path

from jobs import views

app_name = "job_pages"

urlpatterns = [
    path("", views.index, name="index"),
    path("callbacks/", views.callback_search, name="callbacks"),  # before a job's own page
    path("callbacks/retry/", views.retry_callbacks, name="retry_callbacks"),
    path("<str:job_id>/", views.detail, name="detail"),
    path("<str:job_id>/pin/", views.pin, {"pinned": True}, name="pin"),
    path("<str:job_id>/unpin/", views.pin, {"pinned": False}, name="unpin"),
    path("<str:job_id>/callbacks/<uuid:delivery_id>/redeliver/", views.redeliver, name="redeliver"),
    path(
        "<str:job_id>/callbacks/<uuid:delivery_id>/stop/", views.stop_retrying, name="stop_retrying"
    ),
]
