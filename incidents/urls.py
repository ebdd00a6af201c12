from django.urls import path

from . import views
from .reviews import urls as reviews_urls

app_name = "incidents"

urlpatterns = [
    path("", views.incident_list, name="list"),
    path("declare/", views.declare, name="declare"),
    path("export.csv", views.export_incidents, name="export"),
    path("severity/", views.severity_levels, name="severity_levels"),
    path("severity/<int:level>/", views.severity_level_edit, name="severity_level_edit"),
    path("severity/mappings/", views.alert_mapping_set, name="alert_mapping_set"),
    path(
        "severity/mappings/<int:pk>/delete/",
        views.alert_mapping_delete,
        name="alert_mapping_delete",
    ),
    *reviews_urls.manager_urlpatterns,
    *reviews_urls.review_urlpatterns,
    path("<str:reference>/", views.detail, name="detail"),
    path("<str:reference>/timeline/older/", views.timeline_older, name="timeline_older"),
    path("<str:reference>/timeline/since/", views.timeline_since, name="timeline_since"),
    path("<str:reference>/timeline.csv", views.export_timeline, name="timeline_export"),
    path("<str:reference>/notes/", views.add_note, name="note"),
    path("<str:reference>/events/<int:event_id>/star/", views.star_event, name="star"),
    path("<str:reference>/status/", views.transition, name="transition"),
    path("<str:reference>/reopen/", views.reopen, name="reopen"),
    path("<str:reference>/severity/", views.change_severity, name="severity"),
    path("<str:reference>/roles/", views.edit_roles, name="roles"),
    path("<str:reference>/edit/", views.edit_details, name="edit"),
]
