"""Shared fixtures: the shipped model pair, and a whole local stack (router, edge worker, Ray Serve pool)."""

from __future__ import annotations

import pytest

from tandem.models import BUILTIN_PROFILES, ModelProfile

PROMPTS = [
    "def fibonacci(n):\n",
    "import os\nimport sys\n\n\ndef main():\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
    "    for i in range(len(items)):\n",
    "# Copyright (c) Python Software Foundation\n",
    "    if not isinstance(value, str):\n        raise TypeError(",
    "def _read(path, encoding='utf-8'):\n    with open(path",
    "return self._cache.get(key, default)\n",
]


@pytest.fixture(scope="session")
def profile() -> ModelProfile:
    p = BUILTIN_PROFILES["stdlib"]
    p.check()  # the shipped pair must be present: a missing model is a failure, not a skip
    return p
