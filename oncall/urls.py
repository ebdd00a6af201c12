from django.urls import path

from opsconsole.placeholders import not_yet_page

app_name = "oncall"

urlpatterns = [
    path("", not_yet_page("On-call", "Rotations, escalation policies and shift handoffs"), name="index"),
]
