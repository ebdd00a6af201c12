import pytest
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families


@pytest.mark.django_db
def test_metrics_scrape_runs_a_constant_number_of_queries(client, django_assert_max_num_queries):
    """Every area exports figures read from the database at scrape time; the
    scrape stays a handful of queries whatever the data size (about two per
    collector: core, incidents, reviews, checks, checklists, notifications, on-call, runbooks),
    plus the watchdog's questions (escalations, checklist slots, probes: at most two each)."""
    call_command("seed_demo")
    with django_assert_max_num_queries(31):
        body = client.get("/metrics").content.decode()
    names = {family.name for family in text_string_to_metric_families(body)}
    for expected in ["http_requests", "opsconsole_incidents_open", "probe_success", "opsconsole_check_state"]:
        assert expected in names, expected
