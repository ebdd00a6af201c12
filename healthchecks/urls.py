from django.urls import path

from . import views

app_name = "healthchecks"

urlpatterns = [
    path("", views.board, name="board"),
    path("checks/new/", views.check_create, name="create"),
    path("checks/<int:pk>/", views.check_detail, name="detail"),
    path("checks/<int:pk>/edit/", views.check_edit, name="edit"),
    path("checks/<int:pk>/latency.csv", views.latency_csv, name="latency_csv"),
    path("checks/<int:pk>/run/", views.check_run_now, name="run_now"),
    path("checks/<int:pk>/rotate-ping-token/", views.heartbeat_rotate, name="heartbeat_rotate"),
    path("maintenance/", views.maintenance_list, name="maintenance"),
    path("maintenance/new/", views.maintenance_create, name="maintenance_create"),
    path("maintenance/<int:pk>/end/", views.maintenance_end, name="maintenance_end"),
    path("ping/<uuid:token>", views.ping, name="ping"),
    path("ping/<uuid:token>/fail", views.ping, {"failed": True}, name="ping_fail"),
]
