from django.apps import AppConfig


class OpsConsoleConfig(AppConfig):
    """The console's core: users, roles, services, audit log, API tokens."""

    name = "opsconsole"
    verbose_name = "Ops Console"

    def ready(self) -> None:
        from . import auth, celery_signals, dashboard, metrics  # noqa: F401  (connect signal handlers)

        metrics.register_db_collector(metrics.AuditHeadCollector())
        metrics.register_db_collector(metrics.QueueLengthCollector())
        from . import watchdog

        metrics.register_db_collector(watchdog.WatchdogCollector())
        dashboard.register_panel(
            name="services",
            template="opsconsole/_services_panel.html",
            context=dashboard.services_panel_context,
            order=90,
        )
