from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Outbound notifications (webhooks, email), their retries and the dead-letter list."""

    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from opsconsole import dashboard, metrics

        from . import selectors

        metrics.register_db_collector(selectors.DeadLetterCollector())
        dashboard.register_panel(
            name="notifications",
            template="notifications/_dashboard_panel.html",
            context=selectors.dashboard_panel_context,
            order=80,
        )
