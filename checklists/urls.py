from django.urls import path

from . import views

app_name = "checklists"

urlpatterns = [
    path("", views.index, name="index"),
    path("runs/start/", views.run_start, name="run_start"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/poll/", views.run_poll, name="run_poll"),
    path("runs/<int:pk>/sign-off/", views.run_sign_off, name="run_sign_off"),
    path("runs/<int:pk>/items/<int:item_pk>/tick/", views.item_tick, name="item_tick"),
    path("runs/<int:pk>/items/<int:item_pk>/reopen/", views.item_reopen, name="item_reopen"),
    path("runs/<int:pk>/items/<int:item_pk>/na/", views.item_na, name="item_na"),
    path("runs/<int:pk>/items/<int:item_pk>/note/", views.item_note, name="item_note"),
    path("templates/", views.template_list, name="templates"),
    path("templates/new/", views.template_create, name="template_create"),
    path("templates/<int:pk>/edit/", views.template_edit, name="template_edit"),
    path("templates/<int:pk>/history/", views.template_history, name="template_history"),
    path("templates/<int:pk>/runs.csv", views.template_export, name="template_export"),
    path("templates/<int:pk>/history.csv", views.template_history_csv, name="template_history_csv"),
]
