from django.urls import path

from opsconsole.placeholders import not_yet_page

app_name = "checklists"

urlpatterns = [
    path("", not_yet_page("Checklists", "Morning and evening checklists"), name="index"),
]
