"""A real local stack for end-to-end tests: router, one edge worker and a Ray Serve cloud pool,
each a separate process on free ports (started once per test session)."""

from __future__ import annotations

import pytest

from tandem.server.local_stack import LocalStack

DEVICE = "e2e-phone"


# The default two pools; a cost-only policy so that AUTO requests from the device are TANDEM
# (the cheapest placement with the large model's output) whatever the machine's speed.
CONFIG = """
[router.policy]
latency_weight = 0.0
"""


@pytest.fixture(scope="session")
def stack(profile, tmp_path_factory):
    config = tmp_path_factory.mktemp("e2e") / "tandem.toml"
    config.write_text(CONFIG)
    with LocalStack(config, progress=lambda msg: print(f"[stack] {msg}", flush=True)) as s:
        s.start_router()
        s.start_edge(DEVICE)
        s.start_cloud()
        s.wait_fleet(edge=1, cloud=2)
        yield s
