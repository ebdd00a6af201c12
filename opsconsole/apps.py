from django.apps import AppConfig


class OpsConsoleConfig(AppConfig):
    """The console's core: users, roles, services, audit log, API tokens."""

    name = "opsconsole"
    verbose_name = "Ops Console"

    def ready(self) -> None:
        from . import auth, celery_signals, dashboard, metrics, notifications  # noqa: F401  (connect signal handlers)

        metrics.register_db_collector(notifications.DeadLetterCollector())
        metrics.register_db_collector(metrics.AuditHeadCollector())
        dashboard.register_panel(
            name="notifications",
            template="opsconsole/_notifications_panel.html",
            context=notifications.dashboard_panel_context,
            order=80,
        )

        dashboard.register_panel(
            name="services",
            template="opsconsole/_services_panel.html",
            context=dashboard.services_panel_context,
            order=90,
        )
