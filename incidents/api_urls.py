"""Mounted at /api/ (opsconsole/urls.py)."""

from django.urls import path

from . import api

app_name = "incidents_api"

urlpatterns = [
    path("alerts/alertmanager", api.alertmanager_webhook, name="alertmanager"),
    path("incidents", api.declare, name="declare"),
    path("incidents/<str:reference>", api.incident_detail, name="detail"),
    path("incidents/<str:reference>/notes", api.add_note, name="note"),
]
