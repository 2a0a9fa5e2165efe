"""deploy/kubernetes.yaml, the agent as a Kubernetes CronJob, is checked offline: every object against the
Kubernetes schemas that the `kubernetes-validate` package ships (strict: an unknown field is an error,
so a misspelt key cannot pass as valid), and the config in its ConfigMap with the agent's own loader,
wired to what the pod really provides (the Secret's key in the environment, its file where the config
reads it, the claim where the repository is)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy import build_image
from verifier.config import parse_config

EXAMPLE = Path(build_image.__file__).with_name("kubernetes.yaml")
# native sidecars (an init container with restartPolicy: Always) arrived in 1.28 and are on by default from 1.29
OLDEST_VERSION = "1.29.0"


def objects() -> dict[str, dict[str, Any]]:
    """Returns the example's objects by kind."""
    return {document["kind"]: document for document in yaml.safe_load_all(EXAMPLE.read_text())}


@pytest.mark.parametrize("version", [OLDEST_VERSION, kubernetes_validate.latest_version()])
def test_every_object_is_valid_for_kubernetes(version: str) -> None:
    found = objects()
    assert set(found) == {"Secret", "ConfigMap", "PersistentVolumeClaim", "CronJob"}
    for document in found.values():
        kubernetes_validate.validate(document, version, strict=True)


def test_a_misspelt_field_is_caught() -> None:
    """The validation above could not pass a broken example: a wrong key fails it."""
    cron_job = objects()["CronJob"]
    cron_job["spec"]["concurrencyPolicey"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cron_job, OLDEST_VERSION, strict=True)


def pod_spec() -> dict[str, Any]:
    return dict(objects()["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def agent_container() -> dict[str, Any]:
    (container,) = pod_spec()["containers"]
    return dict(container)


def test_one_night_at_a_time_with_verifier_run_as_the_images_account() -> None:
    spec = objects()["CronJob"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert agent_container()["args"][0] == "run"
    security = pod_spec()["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == security["fsGroup"] == build_image.USER_ID
    assert agent_container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"requests", "limits"} <= set(agent_container()["resources"])


def test_the_configmaps_config_loads_with_what_the_pod_provides(tmp_path: Path) -> None:
    found = objects()
    secret_keys = set(found["Secret"]["stringData"])
    container = agent_container()
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec()["volumes"]}
    text = found["ConfigMap"]["data"]["config.yaml"]

    environment = {}
    for variable in container["env"]:
        reference = variable.get("valueFrom", {}).get("secretKeyRef")
        if reference is not None:
            assert reference["name"] == found["Secret"]["metadata"]["name"] and reference["key"] in secret_keys
            environment[variable["name"]] = "from-the-secret"
    secret_volume = volumes["secrets"]["secret"]
    assert secret_volume["secretName"] == found["Secret"]["metadata"]["name"]
    for item in secret_volume["items"]:
        assert item["key"] in secret_keys
        in_pod = f"{mounts['secrets']['mountPath']}/{item['path']}"
        assert f"file:{in_pod}" in text
        stand_in = tmp_path / item["path"]
        stand_in.write_text("from-the-secret-file\n")
        text = text.replace(f"file:{in_pod}", f"file:{stand_in}")

    config = parse_config(text, origin="ConfigMap config.yaml", environment=environment)

    assert config.source.password is not None and config.source.password.get_secret_value() == "from-the-secret"
    assert config.verify.server is not None and config.verify.server.password is not None
    assert config.verify.server.password.get_secret_value() == "from-the-secret-file"
    # below the volume's root, which is root's (group fsGroup): the agent makes the repository its own 0700
    assert config.repository.path.parent == Path(mounts["repository"]["mountPath"])
    claim = found["PersistentVolumeClaim"]["metadata"]["name"]
    assert volumes["repository"]["persistentVolumeClaim"]["claimName"] == claim
    assert mounts["config"]["mountPath"] == container["args"][container["args"].index("--config") + 1]
