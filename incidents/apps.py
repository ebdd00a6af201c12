from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        from notifications.visibility import register_subject_visibility
        from opsconsole import dashboard
        from opsconsole.metrics import register_db_collector

        from . import metrics, selectors
        from .reviews import metrics as review_metrics
        from .reviews import selectors as review_selectors

        register_db_collector(metrics.COLLECTOR)
        register_db_collector(review_metrics.COLLECTOR)
        # The dead-letter list shows a restricted incident's notifications
        # only to the people who may see that incident.
        register_subject_visibility("incidents.incident", selectors.visible_incident_ids)
        dashboard.register_panel(
            name="incidents",
            template="incidents/_dashboard_panel.html",
            context=selectors.dashboard_panel_context,
            order=10,
        )
        dashboard.register_panel(
            name="reviews",
            template="incidents/reviews/_dashboard_panel.html",
            context=review_selectors.dashboard_panel_context,
            order=15,
        )
