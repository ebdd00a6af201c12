from django.apps import AppConfig


class RunbooksConfig(AppConfig):
    name = "runbooks"
    verbose_name = "Runbooks"

    def ready(self) -> None:
        from opsconsole import dashboard
        from opsconsole.metrics import register_db_collector

        from . import hooks, metrics

        dashboard.register_panel(
            name="runbooks", template="runbooks/_dashboard_panel.html", context=hooks.dashboard_panel_context, order=35
        )
        register_db_collector(metrics.RunbookCollector())
        hooks.register_incident_panel()
        hooks.register_check_hooks()
