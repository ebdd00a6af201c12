from django.apps import AppConfig


class OpsConsoleConfig(AppConfig):
    """The console's core: users, roles, services, audit log, API tokens."""

    name = "opsconsole"
    verbose_name = "Ops Console"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from . import auth, celery_signals, dashboard, live, metrics  # noqa: F401  (connect signal handlers)

        # Live pages: any saved or deleted product model marks its area changed.
        for signal in (post_save, post_delete, m2m_changed):
            signal.connect(live.on_model_change, dispatch_uid=f"live-{signal}")

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
