from django.apps import AppConfig


class HealthchecksConfig(AppConfig):
    name = "healthchecks"
    verbose_name = "Health checks"

    def ready(self) -> None:
        from opsconsole.dashboard import register_panel
        from opsconsole.metrics import register_db_collector

        from . import selectors
        from .metrics import CheckStateCollector

        register_panel(
            name="healthchecks",
            template="healthchecks/_dashboard_panel.html",
            context=lambda request: {
                "counts": selectors.state_counts(),
                "failing": list(selectors.failing_checks()),
            },
            order=30,
        )
        # One instance: register_db_collector ignores a second registration of it.
        global _COLLECTOR
        _COLLECTOR = _COLLECTOR or CheckStateCollector()
        register_db_collector(_COLLECTOR)


_COLLECTOR = None
