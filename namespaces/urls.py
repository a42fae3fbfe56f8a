from django.urls import path, re_path

from namespaces import views, webhook_views
from namespaces.forms import RESERVED

app_name = "namespaces"
# A path segment is a namespace's name, never a page's name (the form refuses those),
# so /namespaces/acme/variables/1/delete/ cannot be read as namespace "acme/variables/1".
SEGMENT = rf"(?!(?:{'|'.join(sorted(RESERVED))})(?:/|$))[A-Za-z0-9][A-Za-z0-9_-]*"
NS = rf"^(?P<path>{SEGMENT}(?:/{SEGMENT})*)"
KINDS = "|".join(views.KINDS)

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("invites/<int:pk>/accept/", views.answer_invite, {"accept": True}, name="accept"),
    path("invites/<int:pk>/reject/", views.answer_invite, {"accept": False}, name="reject"),
    re_path(NS + r"/edit/$", views.edit, name="edit"),
    re_path(NS + r"/delete/$", views.delete, name="delete"),
    re_path(NS + r"/members/$", views.members, name="members"),
    re_path(NS + r"/invite/$", views.invite, name="invite"),
    re_path(NS + r"/members/(?P<user_id>\d+)/remove/$", views.remove_member, name="remove_member"),
    re_path(NS + r"/jobs/$", views.jobs, name="jobs"),
    re_path(NS + r"/jobs/(?P<job_id>[\w-]+)/$", views.job, name="job"),
    re_path(NS + r"/webhooks/$", webhook_views.index, name="webhooks"),
    re_path(NS + r"/webhooks/new/$", webhook_views.create, name="create_webhook"),
    re_path(NS + r"/webhooks/(?P<pk>\d+)/$", webhook_views.detail, name="webhook"),
    re_path(NS + r"/webhooks/(?P<pk>\d+)/delete/$", webhook_views.delete, name="delete_webhook"),
    re_path(NS + r"/webhooks/(?P<pk>\d+)/test/$", webhook_views.send_test, name="test_webhook"),
    re_path(NS + r"/webhooks/(?P<pk>\d+)/snooze/$", webhook_views.snooze, name="snooze_webhook"),
    re_path(NS + r"/webhooks/(?P<pk>\d+)/deliveries/$", webhook_views.deliveries,
            name="deliveries"),
    re_path(NS + r"/webhooks/(?P<pk>\d+)/deliveries/retry/$", webhook_views.retry_deliveries,
            name="retry_deliveries"),
    re_path(NS + r"/webhooks/(?P<pk>\d+)/deliveries/(?P<delivery_id>[0-9a-f-]{36})/$",
            webhook_views.delivery, name="delivery"),
    re_path(NS + r"/webhooks/(?P<pk>\d+)/deliveries/(?P<delivery_id>[0-9a-f-]{36})/redeliver/$",
            webhook_views.redeliver, name="redeliver"),
    re_path(NS + rf"/(?P<kind>{KINDS})/$", views.resources, name="resources"),
    re_path(NS + rf"/(?P<kind>{KINDS})/(?P<pk>\d+)/$", views.edit_resource, name="edit_resource"),
    re_path(NS + rf"/(?P<kind>{KINDS})/(?P<pk>\d+)/delete/$", views.delete_resource,
            name="delete_resource"),
    re_path(NS + r"/(?P<kind>images|objects)/(?P<pk>\d+)/download/$", views.download,
            name="download"),
    re_path(NS + r"/$", views.detail, name="detail"),
]  # fmt: skip
