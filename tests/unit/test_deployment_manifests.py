"""Where Azure teams deploy: the Kubernetes manifests validate against Kubernetes's own schemas, the
Azure Container Apps spec holds what the bot needs, and both stay in step with the image (its port, its
user, its command, the environment the bot reads) and with each other."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from bot.entrypoints.arguments import parser as cli_parser

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = [doc for doc in yaml.safe_load_all((ROOT / "deploy/kubernetes/kerberos-bot.yaml").read_text()) if doc]
KEY_VAULT = yaml.safe_load((ROOT / "deploy/kubernetes/key-vault.yaml").read_text())
CONTAINER_APP = yaml.safe_load((ROOT / "deploy/azure-container-apps/kerberos-bot.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
KUBERNETES_VERSION = "1.30.0"  # AKS's supported versions at the time of writing include it


def of_kind(kind: str) -> dict[str, Any]:
    [doc] = [d for d in KUBERNETES if d["kind"] == kind]
    return dict(doc)


def container() -> dict[str, Any]:
    [found] = of_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(found)


@pytest.mark.parametrize("doc", KUBERNETES, ids=lambda d: str(d["kind"]))
def test_every_manifest_validates_against_the_kubernetes_schemas(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_two_replicas_one_kept_up_non_root_and_read_only() -> None:
    deployment = of_kind("Deployment")
    assert deployment["spec"]["replicas"] == 2 and of_kind("PodDisruptionBudget")["spec"]["minAvailable"] == 1
    pod = deployment["spec"]["template"]["spec"]
    user = re.search(r"useradd --create-home --uid (\d+)", DOCKERFILE)
    assert user and pod["securityContext"]["runAsUser"] == int(user.group(1)) and pod["securityContext"]["runAsNonRoot"]
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"]


def test_the_container_runs_what_the_image_serves_and_probes_its_health_listener() -> None:
    bot = container()
    arguments = cli_parser().parse_args(bot["args"])  # the CLI takes them as they are
    assert arguments.command == "serve" and 'CMD ["serve"' in DOCKERFILE
    exposed = re.search(r"^EXPOSE (\d+)$", DOCKERFILE, re.M)
    assert exposed and arguments.port == int(exposed.group(1))
    ports = {p["name"]: p["containerPort"] for p in bot["ports"]}
    assert ports == {"slack": arguments.port, "health": arguments.health_port} and arguments.health_host == "0.0.0.0"
    assert (
        bot["readinessProbe"]["httpGet"]["path"] == "/readyz" and bot["livenessProbe"]["httpGet"]["path"] == "/healthz"
    )
    assert [p["targetPort"] for p in of_kind("Service")["spec"]["ports"]] == ["slack"]  # health stays off it
    ingress = of_kind("NetworkPolicy")["spec"]["ingress"]
    assert [p["port"] for rule in ingress for p in rule["ports"]] == [arguments.port]


def test_the_environment_is_what_the_bot_reads_and_the_key_vault_sync_fills_every_secret() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    wanted = set(compose["services"]["bot"]["environment"]) - {"SLACK_API_URL"}  # Slack's own by default
    env = {e["name"]: e for e in container()["env"]}
    assert wanted <= set(env)
    referenced = {e["valueFrom"]["secretKeyRef"]["key"] for e in env.values() if "valueFrom" in e}
    [synced] = KEY_VAULT["spec"]["secretObjects"]
    assert KEY_VAULT["kind"] == "SecretProviderClass" and synced["secretName"] == "kerberos-bot"
    assert referenced == {item["key"] for item in synced["data"]}


def test_the_container_app_matches_the_kubernetes_shape_and_reads_every_secret_from_key_vault() -> None:
    template = CONTAINER_APP["properties"]["template"]
    assert template["scale"]["minReplicas"] == 2
    [app] = template["containers"]
    assert app["args"] == container()["args"]
    arguments = cli_parser().parse_args(app["args"])
    assert CONTAINER_APP["properties"]["configuration"]["ingress"]["targetPort"] == arguments.port
    assert {p["httpGet"]["port"] for p in app["probes"]} == {arguments.health_port}
    secrets = {s["name"]: s for s in CONTAINER_APP["properties"]["configuration"]["secrets"]}
    assert all(s["keyVaultUrl"].startswith("https://") and s["identity"] for s in secrets.values())
    names = {e["name"] for e in app["env"]}
    assert names == {e["name"] for e in container()["env"]} - {"PROMETHEUS_MULTIPROC_DIR"}
    assert {e["secretRef"] for e in app["env"] if "secretRef" in e} <= set(secrets)
