from django.apps import AppConfig


class OncallConfig(AppConfig):
    name = "oncall"
    verbose_name = "On-call"

    def ready(self) -> None:
        from notifications.recipients import register_on_call_resolver
        from opsconsole import dashboard, metrics

        from . import selectors

        # Notifications and incidents page "whoever is on call" through this
        # hook: they sit below oncall and never import it.
        register_on_call_resolver(selectors.on_call_now)

        dashboard.register_panel(
            name="oncall",
            template="oncall/_panel.html",
            context=selectors.dashboard_panel_context,
            order=20,
        )
        metrics.register_db_collector(selectors.UncoveredRotationsCollector())
