from django.urls import path

from opsconsole.placeholders import not_yet_page

app_name = "incidents"

urlpatterns = [
    path("", not_yet_page("Incidents", "Declaring and running incidents"), name="list"),
    path("reviews/", not_yet_page("Post-incident reviews", "Post-incident reviews and their action items"), name="reviews"),
]
