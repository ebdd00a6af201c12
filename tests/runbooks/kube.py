"""A fake Kubernetes API for the actions' tests: the real paths and JSON of
apps/v1 deployments, their scale subresource, ReplicaSets and pods, with
state that PATCHes change (a merge patch, a strategic merge patch or a JSON
patch, as the official client sends them). Built on the health checks'
HttpTarget, which records every request and its body."""

import copy
import json

from tests.healthchecks.targets import HttpTarget

UID = "d6f1a7b0-0000-4000-8000-000000000001"


def _template(image: str, stamp: str | None = None) -> dict:
    annotations = {"kubectl.kubernetes.io/restartedAt": stamp} if stamp else {}
    return {
        "metadata": {"labels": {"app": "worker"}, **({"annotations": annotations} if annotations else {})},
        "spec": {"containers": [{"name": "worker", "image": image}]},
    }


class FakeCluster:
    def __init__(self, tmp_path, *, replicas: int = 3, revision: int = 3, name: str = "worker"):
        self.name = name
        self.replicas = replicas
        self.revision = revision
        self.template = _template(f"worker:{revision}")
        self.replica_sets = {n: _template(f"worker:{n}") for n in range(1, revision + 1)}
        for n, template in self.replica_sets.items():
            template["metadata"]["labels"]["pod-template-hash"] = f"hash{n}"
        base = "/apis/apps/v1/namespaces/prod"
        self.target = HttpTarget(
            {
                f"{base}/deployments/{name}": self._deployment,
                f"{base}/deployments/{name}/scale": self._scale,
                f"{base}/replicasets": lambda handler: self._json(self._replica_set_list()),
                "/api/v1/namespaces/prod/pods": lambda handler: self._json(self._pods()),
            }
        )
        self.kubeconfig = tmp_path / "kubeconfig"
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "test",
                    "clusters": [{"name": "test", "cluster": {"server": f"http://127.0.0.1:{self.target.port}"}}],
                    "users": [{"name": "console", "user": {"token": "console-token"}}],
                    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "console"}}],
                }
            )
        )

    # --- what was asked -------------------------------------------------------------
    @property
    def requests(self) -> list[tuple[str, str, str, object]]:
        """(method, path, content type, JSON body or None) of every request."""
        server = self.target.server
        return [
            (method, path, headers.get("Content-Type", ""), json.loads(body) if body else None)
            for (method, path, headers), body in zip(server.requests, server.bodies, strict=True)
        ]

    def writes(self) -> list[tuple[str, str, str, object]]:
        return [r for r in self.requests if r[0] != "GET"]

    def close(self) -> None:
        self.target.close()

    # --- the API --------------------------------------------------------------------
    @staticmethod
    def _json(document, status: int = 200):
        return (status, "application/json", json.dumps(document), 0)

    def _deployment_doc(self) -> dict:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name,
                "namespace": "prod",
                "uid": UID,
                "annotations": {"deployment.kubernetes.io/revision": str(self.revision)},
            },
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": "worker"}},
                "template": copy.deepcopy(self.template),
            },
            "status": {"replicas": self.replicas, "availableReplicas": self.replicas},
        }

    def _scale_doc(self) -> dict:
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": self.name, "namespace": "prod"},
            "spec": {"replicas": self.replicas},
            "status": {"replicas": self.replicas, "selector": "app=worker"},
        }

    def _scale(self, handler):
        if handler.command == "PATCH":
            self.replicas = json.loads(handler.body)["spec"]["replicas"]
        return self._json(self._scale_doc())

    def _deployment(self, handler):
        if handler.command == "PATCH":
            patch = json.loads(handler.body)
            if isinstance(patch, list):  # JSON patch: rollout undo
                for op in patch:
                    assert op["op"] == "replace" and op["path"] == "/spec/template"
                    self.template = op["value"]
                self.revision += 1
            else:  # strategic merge: rollout restart
                annotations = patch["spec"]["template"]["metadata"]["annotations"]
                self.template.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
                self.revision += 1
        return self._json(self._deployment_doc())

    def _replica_set_list(self) -> dict:
        items = []
        for n, template in self.replica_sets.items():
            items.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": f"worker-hash{n}",
                        "namespace": "prod",
                        "annotations": {"deployment.kubernetes.io/revision": str(n)},
                        "ownerReferences": [
                            {
                                "apiVersion": "apps/v1",
                                "kind": "Deployment",
                                "name": "worker",
                                "uid": UID,
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "worker"}}, "template": template},
                }
            )
        # A ReplicaSet of another owner with the same labels must be ignored.
        items.append(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": "stranger",
                    "namespace": "prod",
                    "annotations": {"deployment.kubernetes.io/revision": "99"},
                },
                "spec": {"selector": {"matchLabels": {"app": "worker"}}, "template": _template("evil:1")},
            }
        )
        return {"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {}, "items": items}

    def _pods(self) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "PodList",
            "metadata": {},
            "items": [
                {
                    "metadata": {"name": f"worker-{i}", "namespace": "prod"},
                    "spec": {"containers": [{"name": "worker"}]},
                    "status": {
                        "phase": "Running",
                        "containerStatuses": [
                            {"name": "worker", "image": "worker:3", "imageID": "x", "ready": i != 2, "restartCount": i}
                        ],
                    },
                }
                for i in range(self.replicas)
            ],
        }
