from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from . import health, metrics, user_views, views

urlpatterns = [
    path("", views.dashboard_view, name="dashboard"),
    path("profile/", views.profile, name="profile"),
    path("settings/api-tokens/", views.api_tokens, name="api_tokens"),
    path("settings/api-tokens/<int:pk>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    path("settings/users/", user_views.user_list, name="users"),
    path("pickers/<slug:source>/", user_views.picker_search, name="picker"),
    path("settings/users/<int:pk>/", user_views.user_detail, name="user_detail"),
    path("settings/users/<int:pk>/active/", user_views.user_set_active, name="user_set_active"),
    path("settings/users/<int:pk>/reset-mfa/", user_views.user_reset_mfa, name="user_reset_mfa"),
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
