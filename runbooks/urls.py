from django.urls import path

from . import exec_views, remediation_views, views

app_name = "runbooks"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.edit, name="create"),
    path("import/", views.import_view, name="import"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/history/", views.history, name="history"),
    path("<int:pk>/versions/<int:number>/", views.version, name="version"),
    path("<int:pk>/start/", exec_views.start, name="start"),
    path("executions/<int:pk>/", exec_views.execution_detail, name="execution"),
    path("executions/<int:pk>/steps/<int:step>/mark/", exec_views.step_mark, name="step_mark"),
    path("executions/<int:pk>/steps/<int:step>/action/", exec_views.action_request, name="action_request"),
    path("executions/<int:pk>/status/<str:to>/", exec_views.set_status, name="set_status"),
    path("executions/<int:pk>/actions/<int:run_pk>/override/", exec_views.action_override, name="action_override"),
    path("executions/<int:pk>/actions/<int:run_pk>/<str:decision>/", exec_views.action_decide, name="action_decide"),
    path("checks/<int:check_pk>/remediation/", remediation_views.remediation_edit, name="remediation_edit"),
    path("checks/<int:check_pk>/remediation/delete/", remediation_views.remediation_delete, name="remediation_delete"),
]
