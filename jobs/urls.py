from django.urls import re_path

from jobs import api
from jobs.openapi import jobs_api

app_name = "jobs"

urlpatterns = [
    *jobs_api.urls[0],  # the routes of jobs/openapi.py, each served by its view in jobs.api
    re_path(r"", api.no_such_route),  # anything else under /v2/: a JSON 404 too
]
