from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from . import health, metrics, views

urlpatterns = [
    path("", views.dashboard_view, name="dashboard"),
    path("profile/", views.profile, name="profile"),
    path("settings/api-tokens/", views.api_tokens, name="api_tokens"),
    path("settings/api-tokens/<int:pk>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    # Browsers ask for /favicon.ico on pages that name none (the admin).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("livez", health.livez, name="livez"),
    path("readyz", health.readyz, name="readyz"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("incidents/", include("incidents.urls")),
    path("api/", include("incidents.api_urls")),
    path("checklists/", include("checklists.urls")),
    path("runbooks/", include("runbooks.urls")),
    path("health/", include("healthchecks.urls")),
    path("oncall/", include("oncall.urls")),
    path("notifications/", include("notifications.urls")),
]

# JSON for the API, the console's own pages elsewhere (opsconsole/badinput.py).
handler400 = "opsconsole.badinput.bad_request"
handler500 = "opsconsole.badinput.server_error"
