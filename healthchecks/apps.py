from django.apps import AppConfig


class HealthchecksConfig(AppConfig):
    name = "healthchecks"
    verbose_name = "Health checks"

    def ready(self) -> None:
        _check_probe_settings()
        from opsconsole.dashboard import register_panel
        from opsconsole.metrics import register_db_collector
        from opsconsole.roles import has_capability

        from . import selectors
        from .metrics import CheckStateCollector

        register_panel(
            name="healthchecks",
            template="healthchecks/_dashboard_panel.html",
            context=lambda request: {
                "counts": selectors.state_counts(),
                "failing": list(selectors.failing_checks()),
                # Detailed probe messages may quote fetched data: config.edit only.
                "show_details": has_capability(request.user, "config.edit"),
            },
            order=30,
        )
        # One instance: register_db_collector ignores a second registration of it.
        global _COLLECTOR
        _COLLECTOR = _COLLECTOR or CheckStateCollector()
        register_db_collector(_COLLECTOR)
        from opsconsole import watchdog as core_watchdog

        from . import watchdog

        core_watchdog.register_probe("probe", "Checks late by two intervals", watchdog.late_checks)


_COLLECTOR = None


def _check_probe_settings() -> None:
    """A bad probe policy setting stops start-up with a message, like every
    other setting (settings.py cannot import the app to parse it)."""
    import os

    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from .probes import policy

    try:
        policy.parse_networks(settings.HEALTHCHECK_DENY_NETWORKS)
    except ValueError as exc:
        raise ImproperlyConfigured(f"HEALTHCHECK_DENY_NETWORKS: {exc}") from exc
    files_dir = settings.HEALTHCHECK_FILES_DIR
    if files_dir and not os.path.isabs(files_dir):
        raise ImproperlyConfigured(f"HEALTHCHECK_FILES_DIR must be an absolute path, not {files_dir!r}.")
