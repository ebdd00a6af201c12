"""An SRE runs the “Messenger Queue Backlog” runbook imported from the seed
guides in real Chromium: a scale action is requested (dry run shown), a
second SRE approves it, the output streams into the first SRE's page, and the
incident timeline shows it all."""

import os
import re

import pytest
from playwright.sync_api import expect

from incidents import services as incident_services
from opsconsole.models import Service
from opsconsole.roles import Role
from runbooks import demo
from runbooks.models import Runbook
from tests.runbooks.kube import FakeCluster

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def cluster(tmp_path, settings):
    import kubernetes.client  # noqa: F401 - seconds to import: not inside the page's first request

    fake = FakeCluster(tmp_path, replicas=3, name="crm-worker")
    settings.RUNBOOK_KUBECONFIG = str(fake.kubeconfig)
    settings.RUNBOOK_ALLOWED_NAMESPACES = ["prod"]
    settings.RUNBOOK_ALLOWED_DEPLOYMENTS = ["prod/crm-*"]
    yield fake
    fake.close()


@pytest.fixture
def open_as(browser, sign_in):
    contexts = []

    def open_page(user):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        sign_in(page, user.username, "pw-for-tests-1")
        page.wait_for_url(lambda url: "/accounts/login" not in url)
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_sre_scales_through_the_imported_runbook_with_a_second_approver(live_server, make_user, open_as, cluster):
    for slug in ("message-queue", "order-worker"):
        Service.objects.get_or_create(slug=slug, defaults={"name": slug.replace("-", " ").title()})
    demo.seed(stdout=open(os.devnull, "w"))  # the seed guides through the importer, step 4 bound to k8s_scale
    runbook = Runbook.objects.get(title="Messenger Queue Backlog")
    sam = make_user(Role.SRE, first_name="Sam", last_name="Reyes")
    ana = make_user(Role.SRE, first_name="Ana", last_name="Lima")
    incident = incident_services.incident_declare(
        actor=sam, title="Messenger queue backlog", severity=2, services=Service.objects.filter(slug="message-queue")
    )

    page = open_as(sam)
    page.goto(f"{live_server.url}/incidents/{incident.reference}/")
    panel = page.get_by_test_id("incident-runbooks")
    expect(panel).to_contain_text("Messenger Queue Backlog")  # suggested by the incident's service
    page.goto(f"{live_server.url}/runbooks/{runbook.pk}/")
    page.get_by_label("Incident (optional)").fill(incident.reference)
    page.get_by_test_id("start").click()
    page.wait_for_url(re.compile(r"/runbooks/executions/\d+/$"))
    steps = page.get_by_test_id("step-run")
    expect(steps).to_have_count(5)
    steps.nth(0).get_by_test_id("done").click()
    expect(steps.nth(0)).to_have_attribute("data-state", "done")
    scale_step = steps.nth(3)
    expect(scale_step.get_by_label("Replicas")).to_have_value("5")
    scale_step.get_by_test_id("request-action").click()
    expect(page.get_by_test_id("dry-run")).to_have_text("deployment prod/crm-worker: replicas 3 → 5", timeout=30_000)
    expect(page.get_by_test_id("action-status")).to_have_text("Awaiting approval")
    assert cluster.writes() == []  # nothing applied before the second pair of eyes

    other = open_as(ana)
    other.goto(page.url)
    other.get_by_test_id("approve").click()
    expect(other.get_by_test_id("action-status")).to_have_text("Succeeded", timeout=30_000)

    # Sam's page polls while the action is pending: the output arrives without a reload.
    expect(page.get_by_test_id("action-output")).to_contain_text(
        "scaled prod/crm-worker: replicas 3 → 5", timeout=20_000
    )
    expect(page.get_by_test_id("action-status")).to_have_text("Succeeded")
    expect(steps.nth(3)).to_have_attribute("data-state", "done")
    assert cluster.replicas == 5 and len(cluster.writes()) == 1

    page.goto(f"{live_server.url}/incidents/{incident.reference}/")
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("requested Kubernetes: scale deployment")
    expect(timeline).to_contain_text("approved Kubernetes: scale deployment")
    expect(timeline).to_contain_text("Kubernetes: scale deployment succeeded: replicas 3 → 5")
    expect(timeline).to_contain_text("Step 1 “Check RabbitMQ queue messages backlog.” done by Sam Reyes")
    assert page.problems == [] and other.problems == []
