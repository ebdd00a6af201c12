"""Who may read a notification's content, asked of the app that owns its subject.

notifications sits below incidents in the app graph, yet the dead-letter list
must not print a restricted incident's payload to a Viewer. The owning app
registers, in its AppConfig.ready(), a function answering "which of these
subject ids may this user see"; deliveries of a restricted subject whose app
registered nothing are shown to nobody.
"""

from collections.abc import Callable, Iterable

from .models import Delivery

SubjectFilter = Callable[[object, list[str]], Iterable[str]]

_filters: dict[str, SubjectFilter] = {}


def register_subject_visibility(subject_type: str, visible_ids: SubjectFilter) -> None:
    """`visible_ids(user, ids)` returns the ids (as strings) among `ids` that `user` may see."""
    _filters[subject_type] = visible_ids


def readable_deliveries(user, deliveries: Iterable[Delivery]) -> set[int]:
    """Pks of the deliveries whose content `user` may read: every unrestricted
    one, and restricted ones whose subject the owning app lets them see.
    One query per subject type on the page, whatever its length."""
    deliveries = list(deliveries)
    readable = {d.pk for d in deliveries if not d.restricted}
    wanted: dict[str, set[str]] = {}
    for delivery in deliveries:
        if delivery.restricted:
            wanted.setdefault(delivery.subject_type, set()).add(delivery.subject_id)
    for subject_type, ids in wanted.items():
        check = _filters.get(subject_type)
        allowed = {str(i) for i in check(user, sorted(ids))} if check else set()
        readable |= {
            d.pk for d in deliveries if d.restricted and d.subject_type == subject_type and d.subject_id in allowed
        }
    return readable
