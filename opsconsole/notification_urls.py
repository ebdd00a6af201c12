from django.urls import path

from . import notification_views

app_name = "notifications"

urlpatterns = [
    path("dead-letters/", notification_views.dead_letters, name="dead_letters"),
    path("dead-letters/<int:pk>/replay/", notification_views.replay, name="replay"),
]
