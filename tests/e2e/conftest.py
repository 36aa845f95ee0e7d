"""A real local stack for end-to-end tests: router, one edge worker and a Ray Serve cloud pool,
each a separate process on free ports (started once per test session)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from stack.local_stack import LocalStack

DEVICE = "e2e-phone"


# The default two pools; a cost-only policy so that AUTO requests from the device are TANDEM
# (the cheapest placement with the large model's output) whatever the machine's speed.
CONFIG = """
[router.policy]
latency_weight = 0.0
"""


@contextlib.contextmanager
def running_stack(
    tmp_path_factory, config: str, devices: tuple[str, ...], replicas: int
) -> Iterator[LocalStack]:
    """A router, an edge worker per device and the config's cloud pools, up until the block ends."""
    path = tmp_path_factory.mktemp("stack") / "tandem.toml"
    path.write_text(config)
    with LocalStack(path, progress=lambda msg: print(f"[stack] {msg}", flush=True)) as s:
        s.start_router()
        for device in devices:
            s.start_edge(device)
        s.start_cloud()
        s.wait_fleet(edge=len(devices), cloud=replicas)
        yield s


@pytest.fixture(scope="session")
def stack(profile, tmp_path_factory):
    with running_stack(tmp_path_factory, CONFIG, (DEVICE,), 2) as s:
        yield s
