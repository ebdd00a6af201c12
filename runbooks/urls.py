from django.urls import path

from opsconsole.placeholders import not_yet_page

app_name = "runbooks"

urlpatterns = [
    path("", not_yet_page("Runbooks", "Step-by-step runbooks with recorded executions"), name="index"),
]
