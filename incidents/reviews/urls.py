"""Review URLs, included in the incidents namespace (names start with
"review" so the navigation marks "Reviews" as current)."""

from django.urls import path

from . import views

# Before the incidents' "<reference>/" patterns.
manager_urlpatterns = [
    path("reviews/", views.manager, name="reviews"),
    path("reviews/trends/<slug:chart>.csv", views.trend_csv, name="reviews_trend_csv"),
]

review_urlpatterns = [
    path("<str:reference>/review/", views.review_detail, name="review"),
    path("<str:reference>/review/create/", views.review_create, name="review_create"),
    path("<str:reference>/review/save/", views.review_save, name="review_save"),
    path("<str:reference>/review/correct/", views.review_correct, name="review_correct"),
    path("<str:reference>/review/preview/", views.review_preview, name="review_preview"),
    path("<str:reference>/review/submit/", views.review_submit, name="review_submit"),
    path("<str:reference>/review/request-changes/", views.review_request_changes, name="review_request_changes"),
    path("<str:reference>/review/approve/", views.review_approve, name="review_approve"),
    path("<str:reference>/review/publish/", views.review_publish, name="review_publish"),
    path("<str:reference>/review/reassign/", views.review_reassign, name="review_reassign"),
    path("<str:reference>/review/comments/", views.review_comment, name="review_comment"),
    path("<str:reference>/review/events/", views.review_select_event, name="review_select_event"),
    path("<str:reference>/review/actions/", views.action_add, name="review_action_add"),
    path("<str:reference>/review/actions/<int:pk>/", views.action_update, name="review_action_update"),
    path("<str:reference>/review.md", views.review_export, name="review_export"),
    path("<str:reference>/review/print/", views.review_print, name="review_print"),
]
