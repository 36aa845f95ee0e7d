"""Ask the router where a request would go without running it, and handle its typed errors.

.venv/bin/python examples/errors_and_explain.py [HOST:PORT] [DEVICE_ID] [CA_FILE]
"""

import sys
from pathlib import Path

import tandem

target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
device = sys.argv[2] if len(sys.argv) > 2 else "my-phone"
# the CA of the router's certificate: `tandem up` makes one in ./tandem-credentials
ca = Path(sys.argv[3] if len(sys.argv) > 3 else "tandem-credentials/ca.pem").read_bytes()

with tandem.Client(target, timeout=30, root_certificates=ca) as client:
    decision = client.explain("class Stack:\n", max_new_tokens=32, device_id=device)
    print(f"would run on: {decision.placement}, because {decision.reason}")
    for c in decision.candidates:
        status = f"excluded: {c.reason}" if c.excluded else f"score {c.score:.4f}"
        print(f"  {c.placement:6} {c.pool or c.edge_worker_id:12} {status}")

    try:
        client.complete("hello", max_new_tokens=0)
    except tandem.InvalidArgument as err:
        print(f"InvalidArgument on field {err.field!r} ({err})")
    try:
        # a private request that must run on a device nobody registered
        client.complete("hello", placement="only_device", device_id="no-such-device", privacy="local_only")
    except (tandem.FailedPrecondition, tandem.NotFound) as err:
        print(f"{type(err).__name__}: {err}")
