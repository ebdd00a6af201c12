"""What incidents announce to the apps above them (oncall, reviews), which
subscribe in their AppConfig.ready(): incidents never imports them.

Both signals are sent inside the incident service's transaction, so a
receiver's writes (an escalation started or stopped) commit or roll back
with the incident's own change. Receivers must not raise for ordinary
situations (no policy, nothing to stop).
"""

from django.dispatch import Signal

# An incident was opened (declared by hand, or by an alert or a check). kwargs: incident.
# Sent before the declare's announcement: a receiver that paged people answers
# {"paged_emails": [...], "note": "Paging L1 …"}; the announcement leaves those
# addresses out and adds the note (one notice per person).
incident_opened = Signal()
# An incident was acknowledged (status triggered → acknowledged). kwargs: incident, actor.
incident_acknowledged = Signal()
