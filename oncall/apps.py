from django.apps import AppConfig


class OncallConfig(AppConfig):
    name = "oncall"
    verbose_name = "On-call"

    def ready(self) -> None:
        from incidents import panels as incident_panels
        from incidents import signals as incident_signals
        from notifications.recipients import register_on_call_resolver
        from opsconsole import dashboard, metrics

        from . import receivers, selectors

        # Notifications and incidents page "whoever is on call" through this
        # hook: they sit below oncall and never import it.
        register_on_call_resolver(selectors.on_call_now)

        dashboard.register_panel(
            name="oncall",
            template="oncall/_panel.html",
            context=selectors.dashboard_panel_context,
            order=20,
        )
        dashboard.register_panel(
            name="handoffs",
            template="oncall/_handoff_panel.html",
            context=selectors.handoff_panel_context,
            order=21,
        )
        metrics.register_db_collector(selectors.OncallCollector())
        from opsconsole import watchdog as core_watchdog

        from . import watchdog

        core_watchdog.register_probe("escalation", "Escalation levels not paged", watchdog.overdue_escalations)
        # Incidents sit below on-call: they announce, on-call listens.
        incident_signals.incident_opened.connect(receivers.on_incident_opened, dispatch_uid="oncall-escalation-start")
        incident_signals.incident_acknowledged.connect(
            receivers.on_incident_acknowledged, dispatch_uid="oncall-escalation-stop"
        )
        incident_panels.register_panel(
            name="escalation",
            template="oncall/_escalation_panel.html",
            context=selectors.escalation_panel_context,
            order=10,
        )
