from django.urls import path, re_path

from jobs import api, worker_api
from jobs.openapi import jobs_api

app_name = "jobs"

WORKER = "<slug:endpoint>/{}/<str:pod_id>"

urlpatterns = [
    # RunPod's worker protocol (remote runpod-python workers, worker keys): jobs/worker_api.py
    path(WORKER.format("job-take"), worker_api.take, name="worker-take"),
    path(WORKER.format("job-take-batch"), worker_api.take_batch, name="worker-take-batch"),
    path(WORKER.format("job-done") + "/<str:job_id>", worker_api.done, name="worker-done"),
    path(WORKER.format("job-stream") + "/<str:job_id>", worker_api.stream, name="worker-stream"),
    path(WORKER.format("ping"), worker_api.ping, name="worker-ping"),
    path(WORKER.format("job-stop"), worker_api.stop, name="worker-stop"),
    *jobs_api.urls[0],  # the routes of jobs/openapi.py, each served by its view in jobs.api
    re_path(r"", api.no_such_route),  # anything else under /v2/: a JSON 404 too
]
