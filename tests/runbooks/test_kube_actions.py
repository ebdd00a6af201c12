"""Kubernetes actions through the official client against a local API server:
the exact requests (paths, methods, content types, bodies) each one makes."""

import pytest
from django.core.exceptions import ValidationError

from runbooks import execution
from runbooks.actions import REGISTRY, ActionError, Reporter
from runbooks.models import StepRun
from tests.runbooks.factories import make_runbook, start
from tests.runbooks.kube import FakeCluster

BASE = "/apis/apps/v1/namespaces/prod/deployments/worker"


@pytest.fixture
def cluster(tmp_path, settings):
    fake = FakeCluster(tmp_path)
    settings.RUNBOOK_KUBECONFIG = str(fake.kubeconfig)
    settings.RUNBOOK_ALLOWED_NAMESPACES = ["prod"]
    settings.RUNBOOK_ALLOWED_DEPLOYMENTS = ["prod/worker"]
    settings.RUNBOOK_ACTION_TIMEOUT_SECONDS = 10
    yield fake
    fake.close()


def test_scale_dry_run_then_apply(cluster):
    scale = REGISTRY["k8s_scale"]
    params = scale.clean({"namespace": "prod", "deployment": "worker", "replicas": "5"})
    assert scale.preview(params) == "deployment prod/worker: replicas 3 → 5"
    assert cluster.writes() == []  # a dry run changes nothing
    report = Reporter()
    assert scale.run(params, report, "key") == "replicas 3 → 5"
    assert cluster.writes() == [
        ("PATCH", f"{BASE}/scale", "application/strategic-merge-patch+json", {"spec": {"replicas": 5}})
    ]
    assert cluster.replicas == 5 and scale.verify(params) is True
    assert cluster.target.server.requests[0][2]["Authorization"] == "Bearer console-token"


def test_rollout_restart_patches_the_restarted_at_annotation(cluster):
    restart = REGISTRY["k8s_restart"]
    params = restart.prepare(restart.clean({"namespace": "prod", "deployment": "worker"}))
    stamp = params["restarted_at"]
    assert "its 3 pods are replaced one by one" in restart.preview(params)
    assert restart.verify(params) is False
    restart.run(params, Reporter(), "key")
    assert cluster.writes() == [
        (
            "PATCH",
            BASE,
            "application/strategic-merge-patch+json",
            {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}},
        )
    ]
    assert restart.verify(params) is True  # a redelivered task sees it done and does not patch again


def test_rollout_undo_to_the_previous_revision_via_replica_sets(cluster):
    undo = REGISTRY["k8s_undo"]
    params = undo.prepare(undo.clean({"namespace": "prod", "deployment": "worker"}))
    assert params["revision"] == 2  # "previous" is pinned when requested
    assert undo.preview(params) == "deployment prod/worker: revision 3 → 2 (images worker:2)"
    undo.run(params, Reporter(), "key")
    list_calls = [r for r in cluster.requests if r[1].startswith("/apis/apps/v1/namespaces/prod/replicasets")]
    assert list_calls[0][1] == "/apis/apps/v1/namespaces/prod/replicasets?labelSelector=app%3Dworker"
    [(method, path, content_type, body)] = cluster.writes()
    assert (method, path, content_type) == ("PATCH", BASE, "application/json-patch+json")
    assert body == [
        {
            "op": "replace",
            "path": "/spec/template",
            "value": {
                "metadata": {"labels": {"app": "worker"}},  # the ReplicaSet's pod-template-hash is dropped
                "spec": {"containers": [{"name": "worker", "image": "worker:2"}]},
            },
        }
    ]


def test_rollout_undo_to_a_chosen_revision_and_refusals(cluster):
    undo = REGISTRY["k8s_undo"]
    params = undo.prepare(undo.clean({"namespace": "prod", "deployment": "worker", "revision": "1"}))
    undo.run(params, Reporter(), "key")
    assert cluster.writes()[0][3][0]["value"]["spec"]["containers"][0]["image"] == "worker:1"
    with pytest.raises(ActionError, match="revision 99 not found"):  # the stranger's ReplicaSet is not ours
        undo.prepare(undo.clean({"namespace": "prod", "deployment": "worker", "revision": "99"}))


def test_pod_status_is_read_only(cluster):
    report = Reporter()
    summary = REGISTRY["k8s_pods"].run({"namespace": "prod", "deployment": "worker"}, report, "key")
    assert summary == "2/3 pods ready" and "worker-2  Running  ready=no  restarts=2" in report.lines
    assert cluster.writes() == []
    assert cluster.requests[-1][1] == "/api/v1/namespaces/prod/pods?labelSelector=app%3Dworker"


def test_targets_outside_the_allowlist_are_refused_even_in_the_worker(cluster, settings):
    scale = REGISTRY["k8s_scale"]
    with pytest.raises(ValidationError):
        scale.clean({"namespace": "prod", "deployment": "api", "replicas": "2"})
    params = scale.clean({"namespace": "prod", "deployment": "worker", "replicas": "2"})
    settings.RUNBOOK_ALLOWED_DEPLOYMENTS = []  # the allowlist shrank after the request
    with pytest.raises(ValidationError):
        scale.run(params, Reporter(), "key")
    assert cluster.requests == []


def test_cluster_errors_are_one_clear_line(tmp_path, settings):
    settings.RUNBOOK_KUBECONFIG = ""
    settings.RUNBOOK_ALLOWED_NAMESPACES = ["prod"]
    settings.RUNBOOK_ALLOWED_DEPLOYMENTS = ["prod/*"]
    with pytest.raises(ActionError, match="not a cluster"):
        REGISTRY["k8s_scale"].preview({"namespace": "prod", "deployment": "web", "replicas": 2})


@pytest.mark.django_db
def test_scale_through_an_execution_with_approval(cluster, make_user):
    from opsconsole.roles import Role

    sre, colleague = make_user(Role.SRE), make_user(Role.SRE)
    run = start(make_runbook(action="k8s_scale", action_step=1), actor=sre)
    step_run = StepRun.objects.select_related("step", "execution").get(execution=run, order=1)
    action_run = execution.action_request(
        actor=sre, step_run=step_run, data={"namespace": "prod", "deployment": "worker", "replicas": "6"}
    )
    assert action_run.status == "awaiting" and action_run.dry_run == "deployment prod/worker: replicas 3 → 6"
    assert cluster.writes() == []
    execution.action_approve(actor=colleague, run=action_run)
    assert execution.perform_action(action_run.pk) == "succeeded"
    action_run.refresh_from_db()
    assert "scaled prod/worker: replicas 3 → 6" in action_run.output and action_run.progress == 100
    assert len(cluster.writes()) == 1 and cluster.replicas == 6
