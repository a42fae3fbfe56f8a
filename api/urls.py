from django.urls import path

from api.hub import hub

urlpatterns = [path("", hub.urls)]
