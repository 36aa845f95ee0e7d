"""A simulated device fleet: N real edge workers (the shipped draft model on onnxruntime, a modelled
battery, an emulated link) in one process, each on its own device link to a router with its own
credential, charging on a pattern.

Run by ``tandem devices`` (the load-test harness starts it as a child process).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from edge_worker.config import BatteryConfig, EdgeConfig
from edge_worker.worker import EdgeWorker
from loadtest.scenario import Fleet
from runtime.profiles import ModelProfile
from runtime.tls import TlsConfig

log = logging.getLogger(__name__)


def device_configs(
    fleet: Fleet,
    router: str,
    seed: int,
    token: Callable[[str], str] = lambda device_id: "",
    tls: TlsConfig | None = None,
) -> list[EdgeConfig]:
    """One EdgeConfig per simulated device: battery drawn from the fleet's range, links dealt by
    weight, credential `token(device id)`, TLS to the router with `tls` (None: plaintext) (pure)."""
    rng = random.Random(f"{seed}-fleet")
    lo, hi = fleet.battery_percent
    total = sum(link.weight for link in fleet.links)
    out = []
    for i in range(fleet.devices):
        # links in proportion to their weights, spread evenly over the ids
        point, acc, link = (i + 0.5) / fleet.devices * total, 0.0, fleet.links[-1]
        for candidate in fleet.links:
            acc += candidate.weight
            if point < acc:
                link = candidate
                break
        battery = BatteryConfig(
            mode="modelled",
            capacity_wh=fleet.capacity_wh,
            initial_percent=rng.uniform(lo, hi),
            charging=charging_at(fleet, i, 0.0),
            charge_watts=fleet.charge_watts,
            energy_per_token_joules=fleet.energy_per_token_joules,
        )
        device_id = f"{fleet.id_prefix}-{i:03d}"
        out.append(
            EdgeConfig(
                device_id=device_id,
                router=router,
                token=token(device_id),
                tls=tls or TlsConfig(),
                insecure=tls is None,
                metrics_port=-1,
                battery=battery,
                link=link.profile(),
                apps="127.0.0.1:0",  # its apps reach it here (a request planned from the device)
            )
        )
    return out


def charging_at(fleet: Fleet, i: int, t_s: float) -> bool:
    """Whether device `i` is on its charger `t_s` seconds into the run (pure): with "cycle", each
    device charges for `charging_share` of every period, the devices' phases spread evenly."""
    if fleet.charging != "cycle":
        return fleet.charging == "always"
    phase = i / max(1, fleet.devices)
    return ((t_s / fleet.charge_period_s + phase) % 1.0) < fleet.charging_share


async def serve(
    fleet: Fleet,
    router: str,
    seed: int,
    profile: ModelProfile,
    ready: Callable[[dict], None],
    stop: asyncio.Event,
    token: Callable[[str], str],
    tls: TlsConfig | None,
    clock: Callable[[], float] | None = None,
) -> None:
    """Start the fleet's workers (device `d` proving itself with `token(d)`), report them through
    `ready`, follow the charging pattern until `stop` is set, then stop the workers (their links
    close: the router forgets them)."""
    loop = asyncio.get_running_loop()
    clock = clock or loop.time
    workers = [EdgeWorker(c, profile) for c in device_configs(fleet, router, seed, token, tls)]
    await asyncio.gather(*(w.start() for w in workers))
    log.info("%d simulated devices linked to %s", len(workers), router)
    ready({"devices": [w.device_id for w in workers], "apps": {w.device_id: w.apps_address for w in workers}})
    t0 = clock()
    try:
        while not stop.is_set():
            for i, w in enumerate(workers):
                w.host.battery.set_charging(charging_at(fleet, i, clock() - t0))
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                pass
    finally:
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
