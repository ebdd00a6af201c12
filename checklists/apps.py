from django.apps import AppConfig


class ChecklistsConfig(AppConfig):
    name = "checklists"
    verbose_name = "Checklists"

    def ready(self) -> None:
        from opsconsole import dashboard
        from opsconsole.metrics import register_db_collector

        from . import metrics, selectors

        dashboard.register_panel(
            name="checklists",
            template="checklists/_dashboard_panel.html",
            context=selectors.dashboard_panel_context,
            order=20,
        )
        register_db_collector(metrics.ChecklistRunsCollector())
        from opsconsole import watchdog as core_watchdog

        from . import watchdog

        core_watchdog.register_probe("checklist_slot", "Checklist slots without a run", watchdog.missing_slot_runs)

        from runbooks.importer import register_extractor

        from .importer import import_templates

        register_extractor("checklists", import_templates)
