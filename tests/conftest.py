"""Shared fixtures: the shipped model pair, and a whole local stack (router, edge worker, Ray Serve pool)."""

from __future__ import annotations

import pytest

from runtime.profiles import ModelProfile, builtin_profile
from runtime.prompts import CODE_PROMPTS

PROMPTS = CODE_PROMPTS[:8]


@pytest.fixture(scope="session")
def profile() -> ModelProfile:
    p = builtin_profile("stdlib")
    p.check()  # the shipped pair must be present: a missing model is a failure, not a skip
    return p
