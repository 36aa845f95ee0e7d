"""Several requests at once with the asyncio client, each with different routing hints.

.venv/bin/python examples/async_requests.py [HOST:PORT] [DEVICE_ID] [CA_FILE]
"""

import asyncio
import sys
from pathlib import Path

import tandem

TARGET = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
DEVICE = sys.argv[2] if len(sys.argv) > 2 else "my-phone"
# the CA of the router's certificate: `tandem up` makes one in ./tandem-credentials
CA = Path(sys.argv[3] if len(sys.argv) > 3 else "tandem-credentials/ca.pem").read_bytes()

REQUESTS = {
    "private (stays on the device)": dict(privacy="local_only", quality="small_ok"),
    "needs the large model": dict(quality="large_required"),
    "interactive, with SLOs": dict(ttft_slo_ms=800, token_slo_ms=100),
    "cloud only": dict(placement="only_cloud"),
}


async def one(client: tandem.AsyncClient, label: str, hints: dict) -> str:
    chunks = [c async for c in client.generate("import os\n", max_new_tokens=24, device_id=DEVICE, **hints)]
    r = tandem.Result.collect(chunks)
    return (
        f"{label:32} → {r.placement:6} {r.usage.completion_tokens:3} tokens  ${r.cloud_usd:.6f}  {r.reason}"
    )


async def main() -> None:
    async with tandem.AsyncClient(TARGET, timeout=60, root_certificates=CA) as client:
        for line in await asyncio.gather(*(one(client, k, v) for k, v in REQUESTS.items())):
            print(line)


asyncio.run(main())
