"""Who may do what to a review, beyond the roles matrix (docs/roles.md): the
services enforce these and the pages show their buttons by them."""

from opsconsole.roles import has_capability

from .models import Review


def is_author(review: Review, actor) -> bool:
    return review.author_id is not None and review.author_id == getattr(actor, "pk", None)


def may_submit(review: Review, actor) -> bool:
    """Its author submits a review, or a Manager/Admin (review.approve)."""
    return has_capability(actor, "review.write") and (
        is_author(review, actor) or has_capability(actor, "review.approve")
    )
