"""Typed configuration loading."""

from __future__ import annotations

import pytest

from cloud_worker.config import CloudConfig
from edge_worker.config import EdgeConfig
from router.config import RouterConfig
from router.policy.config import PolicyConfig
from runtime.configfile import ConfigError, build, load
from tandem.errors import InvalidArgument


def test_example_config_builds_every_component():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "tandem.toml"
    data = load(path)
    base = path.parent
    assert build(RouterConfig, data["router"], "router", base).port == 50051
    edge = build(EdgeConfig, data["edge"], "edge", base)
    assert edge.battery.capacity_wh > 0
    cloud = build(CloudConfig, data["cloud"], "cloud", base)
    assert [p.name for p in cloud.pools] == ["asic", "gpu"]
    router = build(RouterConfig, data["router"], "router", path.parent)
    assert router.policy == PolicyConfig()  # the annotated example shows the defaults


@pytest.mark.parametrize(
    "table,match",
    [
        ({"prot": 1}, "router.prot: unknown key"),
        ({"port": "x"}, "router.port: must be a finite number"),
        ({"port": 1.5}, "router.port: must be an integer"),
        ({"policy": {"cost_weight": -1}}, "router.policy.cost_weight: must be a finite number >= 0"),
        ({"policy": {"costweight": 1}}, "router.policy.costweight: unknown key"),
        ({"port": True}, "router.port: must be a finite number"),
        ({"lease_ms": 10, "heartbeat_interval_ms": 100}, "lease_ms"),
        ({"draft_tree": [3, 9]}, "draft_tree"),
        ({"draft_tree": [4, 4, 2]}, "32 paths; at most 16"),
    ],
)
def test_bad_router_config_is_named(table, match):
    with pytest.raises(ConfigError, match=match) as e:
        build(RouterConfig, table, "router")
    assert isinstance(e.value, InvalidArgument) and e.value.field.startswith("router")  # one error type


def test_draft_tree_setting():
    assert build(RouterConfig, {"draft_tree": [3, 2], "insecure": True}, "router").draft_tree == (3, 2)
    assert build(RouterConfig, {"insecure": True}, "router").draft_tree == ()


def test_nested_tables_and_lists():
    edge = build(EdgeConfig, {"providers": ["CPUExecutionProvider"], "battery": {"capacity_wh": 5}}, "edge")
    assert edge.providers == ("CPUExecutionProvider",) and edge.battery.capacity_wh == 5.0
    with pytest.raises(ConfigError, match=r"edge.battery: mode must be"):
        build(EdgeConfig, {"battery": {"mode": "solar"}}, "edge")
    with pytest.raises(ConfigError, match=r"cloud.pools\[0\].replicas"):
        build(CloudConfig, {"pools": [{"replicas": "two"}]}, "cloud")
    with pytest.raises(ConfigError, match="distinct"):
        build(CloudConfig, {"pools": [{"name": "a"}, {"name": "a"}]}, "cloud")
    with pytest.raises(ConfigError, match="mutual TLS"):  # secure by default: TLS files, or say insecure
        build(CloudConfig, {}, "cloud")
    with pytest.raises(ConfigError, match="mutual TLS"):
        build(EdgeConfig, {"listen": True}, "edge")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[router\n")
    with pytest.raises(ConfigError):
        load(bad)


def test_a_table_configures_pairs_such_as_pool_prices(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("[router]\ninsecure = true\n[router.policy.pool_prices]\ngpu = 2.5\nasic = 0.5\n")
    assert build(RouterConfig, load(path)["router"], "router").policy.pool_prices == (
        ("asic", 0.5),
        ("gpu", 2.5),
    )
    path.write_text("[router]\ninsecure = true\n[router.policy.pool_prices]\ngpu = 'cheap'\n")
    with pytest.raises(ConfigError, match="pool_prices"):
        build(RouterConfig, load(path)["router"], "router")
