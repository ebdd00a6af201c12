from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        from notifications.visibility import register_subject_visibility
        from opsconsole import dashboard
        from opsconsole.metrics import register_db_collector

        from . import metrics, selectors

        register_db_collector(metrics.COLLECTOR)
        # The dead-letter list shows a restricted incident's notifications
        # only to the people who may see that incident.
        register_subject_visibility("incidents.incident", selectors.visible_incident_ids)
        dashboard.register_panel(
            name="incidents",
            template="incidents/_dashboard_panel.html",
            context=selectors.dashboard_panel_context,
            order=10,
        )
