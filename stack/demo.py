"""``tandem demo``: a router, an edge worker and a cloud pool on this machine, and a few requests.

Starts the three as real processes on free ports, waits for the fleet to assemble, sends prompts
with different hints, prints each text with where it ran and why, and shuts everything down
(Ray included) — also on Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import tandem
from runtime.configfile import ConfigError, load
from runtime.profiles import builtin_profile, is_chat, profile_from_config
from stack.local_stack import LocalStack, StackError

DEVICE = "demo-phone"

# (title, prompt, options): the hints show each placement rule at work. The stdlib pair continues
# code; the smollm2 profile answers chat messages (the prompt is the user's message).
CODE_REQUESTS = [
    ("prefer the device", "def fibonacci(n):\n", dict(placement="prefer_device", device_id=DEVICE)),
    ("only the cloud", "import os\n\n\ndef main():\n", dict(placement="only_cloud")),
    (
        "auto: the policy weighs cost, latency and battery",
        "import os\n\n\ndef main():\n",
        dict(placement="auto", device_id=DEVICE),
    ),
    (
        "private: never leaves the device",
        "class Stack:\n    def __init__(self):\n",
        dict(privacy="local_only", device_id=DEVICE),
    ),
    (
        "tandem, sampled (temperature 0.8, seed 7), with a stop string",
        "for i in range(",
        dict(device_id=DEVICE, temperature=0.8, seed=7, stop=["\n\n"]),
    ),
    (
        "only the device, but the device is unknown",
        "x = 1",
        dict(placement="only_device", device_id="no-such-phone"),
    ),
]
CHAT_REQUESTS = [
    (
        "prefer the device",
        "What is the capital of France?",
        dict(placement="prefer_device", device_id=DEVICE),
    ),
    (
        "only the cloud",
        "Give me three tips for staying focused while studying.",
        dict(placement="only_cloud"),
    ),
    (
        "auto: the policy weighs cost, latency and battery",
        "Explain photosynthesis in simple terms.",
        dict(placement="auto", device_id=DEVICE),
    ),
    (
        "private: never leaves the device",
        "Write a short note reminding me to water the plants.",
        dict(privacy="local_only", device_id=DEVICE),
    ),
    (
        "tandem with a draft tree (the device's top-3 first tokens, top-2 under each: "
        "6 paths per verify pass)",
        "Explain how a rainbow forms.",
        dict(device_id=DEVICE, placement="prefer_tandem", draft_tree=(3, 2)),
    ),
    (
        "tandem, sampled (temperature 0.7, seed 7)",
        "Write a haiku about the ocean.",
        dict(device_id=DEVICE, temperature=0.7, seed=7, placement="prefer_tandem"),
    ),
    (
        "only the device, but the device is unknown",
        "Hello!",
        dict(placement="only_device", device_id="no-such-phone"),
    ),
]


def choose_model(config: Path | None, requested: str | None) -> tuple[str | None, str]:
    """The profile the demo runs and a line saying why. `requested` (--model) wins; then a config
    file's own [model] table (None: the components read it); else smollm2 when it is built, and
    the stdlib pair, with how to build smollm2, when it is not."""
    if requested:
        return requested, f"model profile {requested!r} (--model)"
    if config and "model" in load(config):
        return None, f"the model profile of {config}"
    missing = builtin_profile("smollm2").missing()
    if missing is None:
        return (
            "smollm2",
            "model profile 'smollm2': SmolLM2-135M-Instruct in the cloud, its distilled draft on the device",
        )
    return "stdlib", (
        f"model profile 'stdlib' (code continuations): the smollm2 profile is not built ({missing[0]} "
        f"missing at {missing[1]}). For an instruction-tuned model answering chat, run "
        f"`pip install -e '.[train]'` and `tandem models build smollm2` (≈5 min), then `tandem demo` again"
    )


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _live_policy_change(stack: LocalStack, client: tandem.Client, request: dict) -> None:
    """Explain one request, change the policy's weights through the Admin API, explain it again."""
    ask = dict(request, max_new_tokens=64, device_id=DEVICE)
    print("\n=== the policy, tuned live: the same request explained before and after a change")
    with tandem.AdminClient(
        stack.router_address, caller="demo", root_certificates=stack.credentials.ca_bytes()
    ) as admin:
        for changes in ({}, {"cost_weight": 0.0, "latency_weight": 1.0}):
            if changes:
                v = admin.set_policy(changes, note="demo: latency only")
                print(f"--- policy v{v.version} by {v.caller}: {changes}")
            d = client.explain(**ask)
            print(
                f"--- decision (policy v{d.policy_version}): {d.placement.upper()}"
                f"{' on pool ' + d.pool if d.pool else ''}; {d.reason}"
            )
            for c in d.candidates:
                where = c.placement.upper() + (f"[{c.pool}]" if c.pool else "")
                what = (
                    f"excluded: {c.reason}"
                    if c.excluded
                    else (
                        f"score {c.score:.3f}, predicted ${c.predicted_cost_usd:.2e}, "
                        f"{c.predicted_ttft_ms:.0f} ms TTFT, "
                        f"{c.predicted_token_ms:.1f} ms/token, {c.predicted_device_energy_joules:.2f} J"
                    )
                )
                print(f"      {where:14} {what}")


def _request(client, title: str, prompt: str, opts: dict, chat: bool, tokens: int) -> dict:
    """Send one request, stream its text, then say where it ran, why and what it cost; returns the
    request's prompt arguments."""
    print(f"\n=== {title}\n--- {'user' if chat else 'prompt'}: {prompt!r}")
    ask = dict(messages=[("user", prompt)]) if chat else dict(prompt=prompt)
    try:
        chunks = []
        sys.stdout.write("--- output: ")
        for chunk in client.generate(**ask, max_new_tokens=tokens, **opts):
            chunks.append(chunk)
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
        r = tandem.Result.collect(chunks)
        print(
            f"\n--- placement: {r.placement.upper()} on {chunks[-1].worker_id}; "
            f"{r.usage.completion_tokens} tokens in {r.total_ms:.0f} ms "
            f"(first after {r.ttft_ms:.0f} ms), finish: {r.finish_reason}"
        )
        if r.decision:
            print(f"--- reason: {r.decision.reason} (decided on the {r.decision.decided_at})")
        if r.placement == "tandem":
            s = chunks[-1].raw.tandem
            print(
                f"--- tandem: {s.rounds} rounds, {s.accepted_tokens}/{s.drafted_tokens} "
                f"drafted tokens accepted ({s.acceptance_rate:.2f}), "
                f"mean γ {s.mean_draft_length:.1f}; {r.target_forward_passes} target passes "
                f"for {r.usage.completion_tokens} tokens"
            )
        if r.placement in ("cloud", "tandem"):
            print(f"--- cost: ${r.cloud_usd:.8f} for {r.target_forward_passes} target passes")
        if r.placement in ("edge", "tandem"):
            print(f"--- device energy: {r.device_energy_joules:.2f} J")
    except tandem.TandemError as exc:
        print(f"\n--- refused: {exc.status}: {exc}")
    return ask


def run_demo(
    config: Path | None = None,
    verbose: bool = False,
    max_new_tokens: int | None = None,
    link_delay_ms: float = 0.0,
    model: str | None = None,
) -> int:
    """Run the demo; `link_delay_ms` > 0 puts an emulated link (that one-way delay) in front of the device.
    `model` picks the profile (see choose_model)."""
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops every component
    model, why = choose_model(config, model)
    _say(why)
    try:
        data = load(config) if config else {}
        profile = profile_from_config(data, Path(data["__dir__"]) if "__dir__" in data else None, model)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"[demo] {exc}", file=sys.stderr)
        return 2
    try:
        with LocalStack(config, log_to_console=verbose, progress=_say, model=model) as stack:
            stack.start_router()
            stack.start_edge(DEVICE, ["--link-delay-ms", str(link_delay_ms)] if link_delay_ms else ())
            stack.start_cloud()
            members = stack.wait_fleet(edge=1, cloud=len(stack.pool_names()))
            _say(
                f"fleet ready in {time.monotonic() - t0:.0f}s: "
                + ", ".join(
                    f"{m.info.worker_id} ({m.info.model_name}, {m.info.execution_provider})" for m in members
                )
            )
            chat = is_chat(profile)
            requests = CHAT_REQUESTS if chat else CODE_REQUESTS
            tokens = max_new_tokens or (96 if chat else 40)
            _say(
                "every hop runs TLS with the stack's own development CA; every member proved who it is "
                f"(credentials in {stack.credentials.root})"
            )
            with stack.client(timeout=120) as client:
                for title, prompt, opts in requests:
                    ask = _request(client, title, prompt, opts, chat, tokens)
                with tandem.Client(stack.apps[DEVICE], timeout=120) as app:
                    _say(f"an app on {DEVICE} calls the agent there ({stack.apps[DEVICE]}), which decides")
                    for title, prompt, opts in (requests[0], requests[3]):
                        device_opts = {k: v for k, v in opts.items() if k != "device_id"}
                        _request(app, f"on the device: {title}", prompt, device_opts, chat, tokens)
                _live_policy_change(stack, client, ask)
            _say("shutting down")
    except StackError as exc:
        print(f"[demo] failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\n[demo] interrupted; everything stopped", file=sys.stderr)
        return 130
    _say(f"done in {time.monotonic() - t0:.0f}s; all processes stopped")
    return 0
