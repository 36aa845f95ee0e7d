"""The SDK examples in examples/ run as written against a real stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import DEVICE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    "name, expect",
    [
        ("quickstart.py", "placement: "),
        ("async_requests.py", "cloud only"),
        ("errors_and_explain.py", "InvalidArgument on field 'sampling.max_new_tokens'"),
    ],
)
def test_example_runs(stack, name, expect):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), stack.router_address, DEVICE, str(stack.credentials.ca_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert expect in done.stdout, done.stdout
