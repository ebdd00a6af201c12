from django.apps import AppConfig


class OncallConfig(AppConfig):
    name = "oncall"
    verbose_name = "On-call"

    def ready(self) -> None:
        from opsconsole import dashboard, metrics

        from . import selectors

        dashboard.register_panel(
            name="oncall",
            template="oncall/_panel.html",
            context=selectors.dashboard_panel_context,
            order=20,
        )
        metrics.register_db_collector(selectors.UncoveredRotationsCollector())
