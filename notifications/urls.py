from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("dead-letters/", views.dead_letters, name="dead_letters"),
    path("dead-letters/<int:pk>/replay/", views.replay, name="replay"),
]
