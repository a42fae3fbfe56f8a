from django.urls import path, re_path

from jobs import api

app_name = "jobs"

urlpatterns = [
    path("<slug:endpoint>/run", api.run, name="run"),
    path("<slug:endpoint>/runsync", api.runsync, name="runsync"),
    path("<slug:endpoint>/status/<str:job_id>", api.status, name="status"),
    path("<slug:endpoint>/stream/<str:job_id>", api.stream, name="stream"),
    path("<slug:endpoint>/cancel/<str:job_id>", api.cancel, name="cancel"),
    path("<slug:endpoint>/retry/<str:job_id>", api.retry, name="retry"),
    path("<slug:endpoint>/tag/<str:job_id>", api.tag, name="tag"),
    path("<slug:endpoint>/health", api.health, name="health"),
    path("<slug:endpoint>/purge-queue", api.purge_queue, name="purge_queue"),
    re_path(r"", api.no_such_route),  # anything else under /v2/: a JSON 404 too
]
