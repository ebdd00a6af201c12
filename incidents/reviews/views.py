"""Review pages. Thin: access → form → service → render. Service refusals
(ValidationError, ReviewRefused, ReviewConflict) become messages or form
errors, never a 500; PermissionDenied becomes a 403."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from opsconsole.badinput import as_pk
from opsconsole.csv_export import csv_response
from opsconsole.roles import has_capability, requires

from .. import selectors as incident_selectors
from ..services import render_markdown
from . import action_items, permissions, selectors, services, trends
from .export import review_markdown
from .forms import (
    ActionItemForm,
    CommentForm,
    CorrectionForm,
    EventSelectForm,
    ReassignForm,
    RequestChangesForm,
    SectionsForm,
    TrendFilterForm,
)
from .models import SECTION_FIELDS, SECTION_MAX_LENGTH, ActionItem, Review

REFUSALS = (ValidationError, services.ReviewRefused, services.ReviewConflict)


def _review(request: HttpRequest, reference: str) -> Review:
    incident = incident_selectors.get_incident(request.user, reference)
    review = selectors.review_for(incident)
    if review is None:
        raise Http404("This incident has no review yet.")
    review.incident = incident
    return review


def _messages_of(exc: Exception) -> list[str]:
    return list(exc.messages) if isinstance(exc, ValidationError) else [str(exc)]


def _back(review: Review, anchor: str = "") -> HttpResponse:
    return redirect(reverse("incidents:review", args=[review.incident.reference]) + anchor)


def _run(request: HttpRequest, review: Review, action, success: str, anchor: str = "", **kwargs) -> HttpResponse:
    """Call a workflow service; refusals become error messages on the review page."""
    try:
        action(review=review, actor=request.user, **kwargs)
        messages.success(request, success)
    except REFUSALS as exc:
        for message in _messages_of(exc):
            messages.error(request, message)
    return _back(review, anchor)


# --- the review page --------------------------------------------------------------


def _page(request: HttpRequest, review: Review, form=None, status: int = 200) -> HttpResponse:
    user = request.user
    context = selectors.review_page_context(review, user)
    initial = {name: getattr(review, name) for name in SECTION_FIELDS} | {"version": review.version}
    context.update(
        incident=review.incident,
        form=form or (SectionsForm(initial=initial) if review.editable else CorrectionForm(initial=initial)),
        can_write=has_capability(user, "review.write"),
        can_approve=has_capability(user, "review.approve"),
        is_author=permissions.is_author(review, user),
        can_submit=permissions.may_submit(review, user),
        comment_form=CommentForm(),
        changes_form=RequestChangesForm(),
        item_form=ActionItemForm(),
        reassign_form=ReassignForm(initial={"author": review.author_id, "due_date": review.due_date}),
        candidates=selectors.candidate_events(review) if review.editable else [],
    )
    return render(request, "incidents/reviews/detail.html", context, status=status)


@require_GET
@requires("read")
def review_detail(request: HttpRequest, reference: str) -> HttpResponse:
    incident = incident_selectors.get_incident(request.user, reference)
    review = selectors.review_for(incident)
    if review is None:
        can_create = has_capability(request.user, "review.write")
        return render(request, "incidents/reviews/none.html", {"incident": incident, "can_create": can_create})
    review.incident = incident
    return _page(request, review)


@require_POST
@requires("review.write")
def review_create(request: HttpRequest, reference: str) -> HttpResponse:
    incident = incident_selectors.get_incident(request.user, reference)
    services.review_create(incident=incident, actor=request.user)
    messages.success(request, "Review created, pre-filled from the incident.")
    return redirect("incidents:review", reference)


@require_POST
@requires("review.write")
def review_save(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    form = SectionsForm(request.POST)
    if form.is_valid():
        try:
            services.review_save(
                review=review, actor=request.user, version=form.cleaned_data["version"], sections=form.sections()
            )
            messages.success(request, "Review saved.")
            return _back(review)
        except REFUSALS as exc:
            form.add_error(None, ValidationError(_messages_of(exc)))
    return _page(request, review, form=form, status=409 if form.non_field_errors() else 400)


@require_POST
@requires("review.approve")
def review_correct(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    form = CorrectionForm(request.POST)
    if form.is_valid():
        try:
            services.review_correct(
                review=review,
                actor=request.user,
                version=form.cleaned_data["version"],
                sections=form.sections(),
                reason=form.cleaned_data["reason"],
            )
            messages.success(request, "Correction saved as a new version.")
            return _back(review)
        except REFUSALS as exc:
            form.add_error(None, ValidationError(_messages_of(exc)))
    return _page(request, review, form=form, status=400)


@require_POST
@requires("review.write")
def review_preview(request: HttpRequest, reference: str) -> HttpResponse:
    """The live preview: the posted section's Markdown, sanitised like everywhere else."""
    incident_selectors.get_incident(request.user, reference)
    section = request.POST.get("section", "")
    if section not in SECTION_FIELDS:
        return HttpResponse("Unknown section.", status=400)
    text = request.POST.get(section, "")[:SECTION_MAX_LENGTH]
    return render(request, "incidents/reviews/_preview.html", {"html": render_markdown(text)})


@require_POST
@requires("review.write")
def review_submit(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    version = request.POST.get("version", "")
    return _run(
        request,
        review,
        services.review_submit,
        "Review submitted for approval.",
        version=as_pk(version),
    )


@require_POST
@requires("review.approve")
def review_request_changes(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    form = RequestChangesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say what needs to change, and in which section.")
        return _back(review)
    return _run(request, review, services.review_request_changes, "Changes requested.", **form.cleaned_data)


@require_POST
@requires("review.approve")
def review_approve(request: HttpRequest, reference: str) -> HttpResponse:
    return _run(request, _review(request, reference), services.review_approve, "Review approved.")


@require_POST
@requires("review.approve")
def review_publish(request: HttpRequest, reference: str) -> HttpResponse:
    return _run(request, _review(request, reference), services.review_publish, "Review published.")


@require_POST
@requires("review.approve")
def review_reassign(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    form = ReassignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an author and a due date.")
        return _back(review)
    return _run(request, review, services.review_reassign, "Author and due date saved.", **form.cleaned_data)


@require_POST
@requires("review.write")
def review_comment(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a section and write the comment.")
        return _back(review)
    return _run(request, review, services.comment_add, "Comment added.", "#comments", **form.cleaned_data)


@require_POST
@requires("review.write")
def review_select_event(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    form = EventSelectForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an event.")
        return _back(review)
    data = form.cleaned_data
    done = "added to" if data["selected"] else "removed from"
    return _run(
        request,
        review,
        services.review_select_event,
        f"Event {done} the review's timeline.",
        "#review-timeline",
        event_id=data["event"],
        selected=data["selected"],
    )


@require_POST
@requires("review.write")
def action_add(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    form = ActionItemForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{form.fields[field].label if field in form.fields else ''}: {' '.join(errors)}")
        return _back(review, "#action-items")
    return _run(
        request, review, action_items.action_item_add, "Action item added.", "#action-items", **form.item_data()
    )


@require_POST
@requires("review.write")
def action_update(request: HttpRequest, reference: str, pk: int) -> HttpResponse:
    review = _review(request, reference)
    item = get_object_or_404(ActionItem.objects.select_related("review"), pk=pk, review=review)
    item.review = review
    form = ActionItemForm(request.POST)
    if not form.is_valid() or not form.cleaned_data.get("version"):
        messages.error(
            request, "The action item was not saved: " + " ".join(m for e in form.errors.values() for m in e)
        )
        return _back(review, "#action-items")

    def update(review, actor, **data):
        return action_items.action_item_update(item=item, actor=actor, version=form.cleaned_data["version"], **data)

    return _run(request, review, update, "Action item saved.", "#action-items", **form.item_data())


# --- exports ----------------------------------------------------------------------------


@require_GET
@requires("read")
def review_export(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    text = review_markdown(review, selectors.selected_events(review), selectors.action_items(review))
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{review.incident.reference}-review.md"'
    return response


@require_GET
@requires("read")
def review_print(request: HttpRequest, reference: str) -> HttpResponse:
    review = _review(request, reference)
    return render(request, "incidents/reviews/print.html", selectors.review_page_context(review, request.user))


# --- manager view ----------------------------------------------------------------------


@require_GET
@requires("read")
def manager(request: HttpRequest) -> HttpResponse:
    form = TrendFilterForm(request.GET or None)
    weeks, service = form.values()
    context = selectors.manager_lists(request.user, service=service)
    context.update(
        form=form,
        charts=trends.build_charts(request.user, weeks=weeks, service=service),
        query=request.GET.urlencode(),
        can_approve=has_capability(request.user, "review.approve"),
    )
    return render(request, "incidents/reviews/manager.html", context)


@require_GET
@requires("read")
def trend_csv(request: HttpRequest, chart: str) -> HttpResponse:
    weeks, service = TrendFilterForm(request.GET or None).values()
    found = next((c for c in trends.build_charts(request.user, weeks=weeks, service=service) if c.slug == chart), None)
    if found is None:
        raise Http404("No such chart.")
    header, *rows = found.csv_rows()
    return csv_response(header, rows, f"{chart}.csv")
