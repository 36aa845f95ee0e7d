"""Shared fixtures: the shipped model pair, and the fleet credentials every test stack runs with."""

from __future__ import annotations

import pytest

from runtime.profiles import ModelProfile, builtin_profile
from runtime.prompts import CODE_PROMPTS
from stack.credentials import FleetCredentials, init_credentials

PROMPTS = CODE_PROMPTS[:8]


@pytest.fixture(scope="session")
def profile() -> ModelProfile:
    p = builtin_profile("stdlib")
    p.check()  # the shipped pair must be present: a missing model is a failure, not a skip
    return p


@pytest.fixture(scope="session")
def fleet(tmp_path_factory) -> FleetCredentials:
    """The tests' fleet credentials: a fleet secret, members' tokens enrolled from it, and a
    development CA with the router's and the workers' certificates."""
    return init_credentials(tmp_path_factory.mktemp("credentials"))


def router_config(fleet: FleetCredentials, **overrides):
    """A router on free ports that checks its members against `fleet` (no metrics, no dashboard)."""
    from router.config import RouterConfig

    base = {
        "port": 0,
        "metrics_port": -1,
        "dashboard_port": -1,
        "fleet_secret_file": fleet.secret_file,
        "tls": fleet.tls("router"),
    }
    return RouterConfig(**{**base, **overrides})


def edge_config(fleet: FleetCredentials, device_id: str, router: str, **overrides):
    """Device `device_id` with its credential, linked to `router` over TLS (no metrics port); with
    listen=True it serves the router with the workers' certificate."""
    from edge_worker.config import EdgeConfig

    base = {
        "device_id": device_id,
        "router": router,
        "token_file": fleet.device_token_file(device_id),
        "tls": fleet.tls("worker" if overrides.get("listen") else ""),
        "metrics_port": -1,
    }
    return EdgeConfig(**{**base, **overrides})
