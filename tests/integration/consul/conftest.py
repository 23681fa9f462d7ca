"""Real Consul agents for the consul backend tests (skipped if consul is not installed).

No ``__init__.py`` here on purpose: as a package, this directory would be named
``consul`` and could shadow py-consul.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from strongroom.physical.consul import ConsulBackend
from tests.support import requires
from tests.support.consul import ConsulCluster, ConsulDevAgent, consul_binary, consul_cluster
from tests.support.consul import consul_dev_agent as start_dev_agent

BackendFactory = Callable[..., ConsulBackend]


def _require_consul() -> None:
    if consul_binary() is None:
        requires.missing("consul", "scripts/install-consul.sh")


@pytest.fixture(scope="module")
def dev_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulDevAgent]:
    _require_consul()
    with start_dev_agent(tmp_path_factory.mktemp("consul-dev")) as agent:
        yield agent


@pytest.fixture(scope="module")
def tls_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulDevAgent]:
    """A dev agent serving HTTPS that requires a client certificate."""
    _require_consul()
    with start_dev_agent(tmp_path_factory.mktemp("consul-tls"), tls=True) as agent:
        yield agent


@pytest.fixture
def make_dev_backend(dev_agent: ConsulDevAgent) -> BackendFactory:
    """Backends on the shared dev agent, each test under its own fresh path."""
    root = f"t-{uuid.uuid4().hex[:10]}/"

    def make(path: str = "", **options: str) -> ConsulBackend:
        return ConsulBackend({"address": dev_agent.host_port, "path": root + path, **options})

    return make


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulCluster]:
    _require_consul()
    with consul_cluster(tmp_path_factory.mktemp("consul-cluster")) as running:
        print(f"consul cluster up in {running.startup_seconds:.1f}s")  # shown with -s
        yield running
