"""Stream one generation, then look at where it ran and why.

.venv/bin/tandem up &                      # a local router, device and cloud pools
.venv/bin/python examples/quickstart.py    # or: examples/quickstart.py HOST:PORT DEVICE_ID CA_FILE
"""

import sys
from pathlib import Path

import tandem

target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
device = sys.argv[2] if len(sys.argv) > 2 else "my-phone"
# the CA of the router's certificate: `tandem up` makes one in ./tandem-credentials
ca = Path(sys.argv[3] if len(sys.argv) > 3 else "tandem-credentials/ca.pem").read_bytes()

with tandem.Client(target, timeout=60, root_certificates=ca) as client:
    chunks = []
    for chunk in client.generate("def fibonacci(n):\n", max_new_tokens=48, device_id=device):
        print(chunk.text, end="", flush=True)
        chunks.append(chunk)
    result = tandem.Result.collect(chunks)
    print()
    print(f"placement: {result.placement} ({', '.join(result.placements)}); reason: {result.reason}")
    print(
        f"tokens: {result.usage.completion_tokens}, cloud cost: ${result.cloud_usd:.6f}, "
        f"device energy: {result.device_energy_joules:.2f} J, time to first token: {result.ttft_ms:.0f} ms"
    )
    if result.tandem:
        print(
            f"TANDEM: {result.tandem.rounds} rounds, acceptance {result.tandem.acceptance_rate:.2f}, "
            f"{result.tandem.tokens_per_round:.1f} tokens per round"
        )
