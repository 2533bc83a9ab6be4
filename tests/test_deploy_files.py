"""The operator's kit (docker-compose.yml, deploy/) parses and agrees with the server: the probes
hit real endpoints, the grace periods cover the drain, the dashboard queries metrics the server
exports (or the few it is about to), the compose file wires the same store to every replica, and
the training workers (compose, Kubernetes) run `mpt worker` from the same image on the same store."""

import json
import re
from pathlib import Path

import yaml

from service.runtime.metrics import Metrics
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
# metrics the dashboard shows that the tenant-scale work adds (issue 9: store sequence, sync lag)
COMING = {"mpt_store_sequence", "mpt_store_sync_lag_seconds"}


def _k8s() -> dict[str, dict]:
    """The manifests by kind ("Deployment": the server's); others by kind/name ("Deployment/mpt-worker")."""
    docs = {}
    for f in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            name = doc.get("metadata", {}).get("name", "mpt-serve")
            docs[doc["kind"] if name == "mpt-serve" else f"{doc['kind']}/{name}"] = doc
    return docs


def _exported_metrics() -> set[str]:
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    return {f.name + s for f in Metrics().registry.collect() for s in suffixes.get(f.type, [""])}


def test_kubernetes_manifests_probe_real_endpoints_and_cover_the_drain():
    docs = _k8s()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret"} <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    drain = float(env["MPT_DRAIN_TIMEOUT_S"]["value"])
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 5
    assert env["MPT_STORE"]["valueFrom"]["secretKeyRef"]["name"] == docs["Secret"]["metadata"]["name"]
    assert env["MPT_REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    settings = {k[4:].lower() for k in env if k.startswith("MPT_") and k != "MPT_REPLICA_ID"}
    assert settings <= set(Settings.model_fields), settings - set(Settings.model_fields)
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"] and hpa["minReplicas"] >= 2
    selector = docs["Service"]["spec"]["selector"]
    assert selector.items() <= docs["Deployment"]["spec"]["template"]["metadata"]["labels"].items()


def test_compose_replicas_share_one_postgres_store_behind_nginx():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    replicas = [s for name, s in services.items() if name.startswith("mpt-")]
    assert len(replicas) == 2 and {r["environment"]["MPT_REPLICA_ID"] for r in replicas} == {"mpt-a", "mpt-b"}
    stores = {r["environment"]["MPT_STORE"] for r in replicas} | {services["seed"]["environment"]["MPT_STORE"]}
    assert len(stores) == 1 and stores.pop().startswith("postgresql://")
    for r in replicas:
        assert "/health/ready" in " ".join(r["healthcheck"]["test"])
        grace = int(r["stop_grace_period"].rstrip("s"))
        assert grace > float(r["environment"]["MPT_DRAIN_TIMEOUT_S"])
        assert "${MPT_ADMIN_TOKEN:?" in r["environment"]["MPT_ADMIN_TOKEN"]  # required, from the environment
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert all(f"server mpt-{x}:8000" in nginx for x in "ab")
    gpu = yaml.safe_load((ROOT / "deploy" / "compose.gpu.yml").read_text())["services"]
    ids = [s["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] for s in gpu.values()]
    assert sorted(ids) == [["0"], ["1"]]  # one GPU per replica


def test_the_dashboard_queries_metrics_the_server_exports():
    dash = json.loads((ROOT / "deploy" / "grafana" / "mpt-serve.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(mpt_[a-z_]+)", e)}
    exported = _exported_metrics()
    missing = {m for m in used if m not in exported and re.sub(r"_(bucket|sum|count)$", "", m) not in COMING}
    assert not missing, f"dashboard queries metrics nobody exports: {missing}"
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("request rate", "latency", "queue depth", "batch", "mixed-task", "tasks resident", "sync", "errors"):
        assert topic in titles, topic


def test_training_workers_run_mpt_worker_from_the_server_image_on_its_store():
    from mpt_cli.main import build_parser

    docs = _k8s()
    server = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    pod = docs["Deployment/mpt-worker"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == server["image"] and c["command"][:2] == ["/opt/venv/bin/mpt", "worker"]
    env = {e["name"]: e for e in c["env"]}
    assert env["MPT_STORE"] == {e["name"]: e for e in server["env"]}["MPT_STORE"]
    assert "worker.yaml" in (K8S / "kustomization.yaml").read_text()
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    worker = services["worker"]
    assert worker["image"] == services["mpt-a"]["image"] and worker["command"][:2] == ["/opt/venv/bin/mpt", "worker"]
    assert worker["environment"]["MPT_STORE"] == services["mpt-a"]["environment"]["MPT_STORE"]
    for command in (c["command"], worker["command"]):  # the flags parse as `mpt worker` flags
        args = build_parser().parse_args([*command[1:], "--model", "m", "--store", "s"])
        assert args.command == "worker" and args.threads == 2 and args.nice == 0
