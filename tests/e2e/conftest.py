"""A real local stack for end-to-end tests: router, one edge worker and a Ray Serve cloud pool,
each a separate process on free ports (started once per test session)."""

from __future__ import annotations

import pytest

from tandem.server.local_stack import LocalStack

DEVICE = "e2e-phone"


@pytest.fixture(scope="session")
def stack(profile):
    with LocalStack(progress=lambda msg: print(f"[stack] {msg}", flush=True)) as s:
        s.start_router()
        s.start_edge(DEVICE)
        s.start_cloud()
        s.wait_fleet(edge=1, cloud=1)
        yield s
