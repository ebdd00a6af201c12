"""Handoff pages: write (prefilled), read, confirm or question, history, Markdown export."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from opsconsole.roles import has_capability, requires

from . import handoffs, selectors
from .forms import HandoffAnswerForm, HandoffForm, HandoffReplyForm
from .handoff_export import to_markdown
from .models import Handoff, Rotation


def _rotation(request: HttpRequest) -> Rotation | None:
    raw = request.POST.get("rotation") or request.GET.get("rotation") or ""
    if raw.isdigit():
        return Rotation.objects.filter(pk=int(raw)).first()
    return selectors.current_rotation_of(request.user)


@requires("handoff.write")
def handoff_new(request: HttpRequest) -> HttpResponse:
    """GET: the prefilled handoff for the rotation (?rotation=, else the one the
    person is on call for now). POST: submit it."""
    rotation = _rotation(request)
    if rotation is None:
        return render(request, "oncall/handoff_pick.html", {"rotations": Rotation.objects.all()})
    draft = handoffs.prefill(rotation=rotation, outgoing=request.user)
    data = request.POST if request.method == "POST" else None
    form = HandoffForm(data, items=draft.items)
    if form.is_valid():
        try:
            handoff = handoffs.handoff_submit(
                actor=request.user,
                rotation=rotation,
                incoming=form.cleaned_data["incoming"],
                notes=form.item_notes(),
                closed=form.closed_keys(),
                new_items=form.cleaned_data["new_items"].splitlines(),
                recent_changes=form.cleaned_data["recent_changes"],
                known_issues=form.cleaned_data["known_issues"],
                no_deployments=form.cleaned_data["no_deployments"],
            )
            messages.success(request, f"Handoff submitted to {handoff.incoming or 'the next person on shift'}.")
            return redirect("oncall:handoff_detail", pk=handoff.pk)
        except ValidationError as exc:
            form.add_error(None, exc)
    rows = [(item, form[f"notes_{item.key}"], form[f"closed_{item.key}"]) for item in draft.items]
    main_fields = [form[name] for name in ("incoming", "recent_changes", "known_issues", "new_items")]
    context = {"draft": draft, "form": form, "rows": rows, "main_fields": main_fields}
    return render(request, "oncall/handoff_new.html", context)


@requires("read")
def handoff_detail(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = get_object_or_404(selectors.handoffs_with_items(), pk=pk)
    return render(request, "oncall/handoff_detail.html", _detail_context(request, handoff))


def _detail_context(
    request: HttpRequest,
    handoff: Handoff,
    form: HandoffAnswerForm | None = None,
    reply_form: HandoffReplyForm | None = None,
) -> dict:
    may_answer = (
        has_capability(request.user, "handoff.write")
        and handoff.status != Handoff.Status.ACKNOWLEDGED
        and request.user.pk != handoff.outgoing_id
        and (handoff.incoming_id in (None, request.user.pk) or has_capability(request.user, "schedule.edit"))
    )
    return {
        "handoff": handoff,
        "status_lines": [(label, handoff.system_status.get(key)) for key, label in handoffs.STATUS_LINES],
        "confirmations": [(label, key in handoff.confirmations) for key, label in handoffs.CONFIRMATIONS],
        "answer_form": form or HandoffAnswerForm(),
        "may_answer": may_answer,
        "reply_form": reply_form or HandoffReplyForm(),
        "may_reply": handoffs.may_reply(request.user, handoff),
    }


@require_POST
@requires("handoff.write")
def handoff_answer(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = get_object_or_404(selectors.handoffs_with_items(), pk=pk)
    form = HandoffAnswerForm(request.POST)
    if form.is_valid():
        try:
            if form.cleaned_data["action"] == "acknowledge":
                handoffs.handoff_acknowledge(
                    actor=request.user, handoff=handoff, confirmations=form.cleaned_data["confirmations"]
                )
                messages.success(request, "Handoff confirmed.")
            else:
                handoffs.handoff_ask(actor=request.user, handoff=handoff, question=form.cleaned_data["question"])
                messages.success(request, "Question sent to the outgoing engineer.")
            return redirect("oncall:handoff_detail", pk=handoff.pk)
        except ValidationError as exc:
            form.add_error(None, exc)
    return render(request, "oncall/handoff_detail.html", _detail_context(request, handoff, form))


@require_POST
@requires("handoff.write")
def handoff_reply(request: HttpRequest, pk: int) -> HttpResponse:
    """The outgoing engineer answers the incoming one's question (the thread)."""
    handoff = get_object_or_404(selectors.handoffs_with_items(), pk=pk)
    form = HandoffReplyForm(request.POST)
    if form.is_valid():
        try:
            handoffs.handoff_reply(actor=request.user, handoff=handoff, answer=form.cleaned_data["answer"])
            messages.success(request, "Answer sent to the incoming engineer.")
            return redirect("oncall:handoff_detail", pk=handoff.pk)
        except ValidationError as exc:
            form.add_error(None, exc)
    return render(request, "oncall/handoff_detail.html", _detail_context(request, handoff, reply_form=form))


@requires("read")
def handoff_history(request: HttpRequest) -> HttpResponse:
    rotation = _rotation(request) if request.GET.get("rotation") else None
    return render(
        request,
        "oncall/handoff_history.html",
        {
            "handoffs": selectors.handoff_history(rotation),
            "rotation": rotation,
            "rotations": Rotation.objects.all(),
            "can_write": has_capability(request.user, "handoff.write"),
        },
    )


@requires("read")
def handoff_markdown(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = get_object_or_404(selectors.handoffs_with_items(), pk=pk)
    response = HttpResponse(to_markdown(handoff, request.user.timezone), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="handoff-{handoff.pk}.md"'
    return response
