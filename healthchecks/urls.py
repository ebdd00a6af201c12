from django.urls import path

from opsconsole.placeholders import not_yet_page

app_name = "healthchecks"

urlpatterns = [
    path("", not_yet_page("Health", "The status board of health checks"), name="board"),
]
