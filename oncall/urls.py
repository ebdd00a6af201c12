from django.urls import path

from . import views

app_name = "oncall"

urlpatterns = [
    path("", views.index, name="index"),
    path("rotations/<int:pk>/shifts/", views.shift_add, name="shift_add"),
    path("shifts/<int:pk>/delete/", views.shift_delete, name="shift_delete"),
]
