"""deploy/kubernetes.yaml's pod imitated on the real engine, as far as a pod can be without Kubernetes:
the agent's image run with the CronJob's arguments, user, environment and mounts (the ConfigMap's config,
the Secret's file, the repository volume), a read-only root filesystem with only /tmp writable, every
capability dropped; the source over TCP and the scratch server a second PostgreSQL (the sidecar, on the
network instead of the pod's loopback). tests/unit/test_kubernetes_example.py checks the objects'
schemas; this checks that the config they carry verifies a backup with what the pod gives the agent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import build_image
from tests.integration.docker.conftest import PRODUCTION_PASSWORD, PRODUCTION_USER, TEST_NETWORK, address_of
from verifier.repository.backups import Repository

pytestmark = pytest.mark.docker

EXAMPLE = Path(build_image.__file__).with_name("kubernetes.yaml")
SCRATCH_PASSWORD = "scratch-Sidecar-pw"


def test_the_cronjobs_pod_verifies_a_backup_into_its_scratch_server(
    docker_client: Any,
    agent_image_tag: str,
    production_container: Any,
    start_postgres: Callable[..., Any],
    tmp_path: Path,
) -> None:
    objects = {document["kind"]: document for document in yaml.safe_load_all(EXAMPLE.read_text())}
    pod = objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    (secret_item,) = next(v for v in pod["volumes"] if v["name"] == "secrets")["secret"]["items"]
    scratch = start_postgres(environment={"POSTGRES_PASSWORD": SCRATCH_PASSWORD})

    config = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])
    config["source"] |= {"host": address_of(production_container), "user": PRODUCTION_USER}
    config["verify"]["server"]["host"] = address_of(scratch)  # the sidecar's loopback in the pod
    config["checks"] = {"min_count": 1}
    tmp_path.chmod(0o755)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / secret_item["path"]).write_text(SCRATCH_PASSWORD)
    (secrets / secret_item["path"]).chmod(0o440)
    os.chown(secrets / secret_item["path"], 0, pod["securityContext"]["fsGroup"])  # as fsGroup does
    volume = tmp_path / "volume"
    volume.mkdir()
    os.chown(volume, 0, pod["securityContext"]["fsGroup"])
    volume.chmod(0o2775)  # a new volume's root under fsGroup: root's, group-owned and -writable, setgid
    repository = volume / Path(config["repository"]["path"]).relative_to(mounts["repository"])
    environment = {"NO_COLOR": "1"}
    for variable in container["env"]:
        reference = variable.get("valueFrom", {}).get("secretKeyRef")
        environment[variable["name"]] = PRODUCTION_PASSWORD if reference else variable["value"]
    security = pod["securityContext"]

    agent = docker_client.containers.run(
        agent_image_tag,
        command=container["args"],
        detach=True,
        network=TEST_NETWORK,
        user=f"{security['runAsUser']}:{security['runAsGroup']}",
        group_add=[str(security["fsGroup"])],
        environment=environment,
        read_only=container["securityContext"]["readOnlyRootFilesystem"],
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        tmpfs={mounts["tmp"]: ""},
        volumes={
            str(config_file): {"bind": mounts["config"], "mode": "ro"},
            str(secrets): {"bind": mounts["secrets"], "mode": "ro"},
            str(volume): {"bind": mounts["repository"], "mode": "rw"},
        },
    )
    try:
        status = agent.wait(timeout=300)
        output = agent.logs().decode(errors="replace")
    finally:
        agent.remove(force=True)

    assert status["StatusCode"] == 0, output
    assert PRODUCTION_PASSWORD not in output and SCRATCH_PASSWORD not in output
    backups = Repository(repository).backups()
    assert len(backups) == 1 and backups[0].manifest is not None
    assert backups[0].manifest.counts_by_table()[("public", "meals")] == 5000
    assert backups[0].dump_path.stat().st_uid == build_image.USER_ID
