from django.urls import path

from . import handoff_views, views

app_name = "oncall"

urlpatterns = [
    path("", views.index, name="index"),
    path("calendar/", views.calendar, name="calendar"),
    path("escalation/", views.policies, name="policies"),
    path("escalation/new/", views.policy_save, name="policy_add"),
    path("escalation/<int:pk>/", views.policy_save, name="policy_save"),
    path("rotations/<int:pk>/settings/", views.rotation_edit, name="rotation_edit"),
    path("rotations/<int:pk>/overrides/", views.override_add, name="override_add"),
    path("overrides/<int:pk>/delete/", views.override_delete, name="override_delete"),
    path("feed/", views.my_feed, name="my_feed"),
    path("feed/<str:token>.ics", views.feed, name="feed"),
]

urlpatterns += [
    path("handoffs/", handoff_views.handoff_history, name="handoffs"),
    path("handoffs/new/", handoff_views.handoff_new, name="handoff_new"),
    path("handoffs/<int:pk>/", handoff_views.handoff_detail, name="handoff_detail"),
    path("handoffs/<int:pk>/answer/", handoff_views.handoff_answer, name="handoff_answer"),
    path("handoffs/<int:pk>/reply/", handoff_views.handoff_reply, name="handoff_reply"),
    path("handoffs/<int:pk>.md", handoff_views.handoff_markdown, name="handoff_markdown"),
]
