from django.urls import path

from . import views

app_name = "oncall"

urlpatterns = [
    path("", views.index, name="index"),
    path("calendar/", views.calendar, name="calendar"),
    path("rotations/<int:pk>/settings/", views.rotation_edit, name="rotation_edit"),
    path("rotations/<int:pk>/overrides/", views.override_add, name="override_add"),
    path("overrides/<int:pk>/delete/", views.override_delete, name="override_delete"),
    path("feed/", views.my_feed, name="my_feed"),
    path("feed/<str:token>.ics", views.feed, name="feed"),
]
