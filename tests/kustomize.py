"""A small kustomize for the tests: renders deploy/kubernetes/ the way
`kubectl apply -k` would, for the features the manifests use and no others
(an unknown kustomization key fails, so a manifest cannot silently rely on
something this renderer ignores).

Supported: resources (files and directories with a kustomization.yaml),
namespace, labels (pairs, metadata only), images (name → newName/newTag),
replicas, patches (strategic merge by file: maps merge, lists of maps merge
by `name`)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

KNOWN_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources", "images", "replicas", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


class KustomizeError(Exception):
    pass


def _documents(path: Path) -> list[dict]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: a document without kind/apiVersion")
    return docs


def merge(base, patch):
    """Strategic merge, simplified: maps merge key by key, lists of named maps
    merge item by item (`name`), anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        merged = [copy.deepcopy(i) for i in base]
        for item in patch:
            match = next((i for i, old in enumerate(merged) if old["name"] == item["name"]), None)
            if match is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[match] = merge(merged[match], item)
        return merged
    return copy.deepcopy(patch)


def _pod_spec(doc: dict) -> dict | None:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("spec")


def build(directory: Path) -> list[dict]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_KEYS
    if unknown:
        raise KustomizeError(f"{directory}: kustomization keys this renderer does not know: {unknown}")
    docs: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            docs.extend(build(path))
        elif path.is_file():
            docs.extend(_documents(path))
        else:
            raise KustomizeError(f"{directory}: resource {entry} does not exist")
    for patch_entry in kustomization.get("patches", []):
        for patch in _documents(directory / patch_entry["path"]):
            name = patch["metadata"]["name"]
            index = next(
                (i for i, d in enumerate(docs) if d["kind"] == patch["kind"] and d["metadata"]["name"] == name), None
            )
            if index is None:
                raise KustomizeError(f"{directory}: patch for {patch['kind']}/{name} matches nothing")
            docs[index] = merge(docs[index], patch)
    for entry in kustomization.get("replicas", []):
        targets = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == entry["name"]]
        if not targets:
            raise KustomizeError(f"{directory}: replicas for unknown Deployment {entry['name']}")
        targets[0]["spec"]["replicas"] = entry["count"]
    for image in kustomization.get("images", []):
        used = False
        for doc in docs:
            pod = _pod_spec(doc)
            for container in (pod or {}).get("containers", []) + (pod or {}).get("initContainers", []):
                name, _, _tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
                    used = True
        if not used:
            raise KustomizeError(f"{directory}: image {image['name']} is used by no container")
    for labels in kustomization.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(labels["pairs"])
    namespace = kustomization.get("namespace")
    if namespace:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = namespace
            for subject in doc.get("subjects", []) if doc["kind"] in ("RoleBinding", "ClusterRoleBinding") else []:
                if subject["kind"] == "ServiceAccount":
                    subject["namespace"] = namespace
    return docs
