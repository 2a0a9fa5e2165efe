"""`verifier doctor`'s line on the docker sandbox's network, which depends on where the engine is:
one on this host mounts the agent's socket directory and the container gets no network; a remote
one cannot, so the sandbox refuses to start (exit 3) unless verify.allow_network accepts an internal
network (exposed, exit 2). The engine is not asked, so no engine is needed here."""

from __future__ import annotations

import pytest

from verifier.config import VerifyConfig
from verifier.sandbox.network import network_facts


def test_a_local_engine_gives_the_sandbox_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    for docker_host in (None, "unix:///run/user/1000/docker.sock"):
        [fact] = network_facts(VerifyConfig(sandbox="docker"), docker_host)
        assert fact.value.startswith("none: the container has no network (Docker network_mode none)"), fact
        assert not fact.exposed and not fact.blocking


def test_a_remote_engine_blocks_the_sandbox_unless_the_network_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://backup@db-host")
    [refused] = network_facts(VerifyConfig(sandbox="docker"))
    assert refused.blocking and refused.value.startswith(
        "the docker sandbox will not start: the engine at ssh://backup@db-host is not on this host"
    ), refused

    [allowed] = network_facts(VerifyConfig(sandbox="docker", allow_network=True), "tcp://10.0.0.5:2376")
    assert allowed.exposed and not allowed.blocking, allowed
    assert allowed.value.startswith("an internal Docker network, cut off by the engine's iptables rules only"), allowed
    assert "tcp://10.0.0.5:2376" in allowed.value
