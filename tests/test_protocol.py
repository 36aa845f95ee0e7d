"""The protocol: generated code is fresh, and every service, rpc, message, field and enum value
is documented."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import gen_protos  # noqa: E402


def test_generated_code_is_fresh(tmp_path):
    generated = gen_protos.generate(tmp_path)
    assert generated, "codegen produced nothing"
    checked_in = sorted(p.name for p in (ROOT / "tandem" / "v1").glob("*.py*"))
    assert sorted(p.name for p in generated) == checked_in
    stale = [p.name for p in generated if p.read_bytes() != (ROOT / "tandem" / "v1" / p.name).read_bytes()]
    assert not stale, f"stale generated code {stale}: run `python scripts/gen_protos.py` and commit"


def test_every_element_is_commented(tmp_path):
    out = tmp_path / "set.pb"
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(ROOT / "proto")) for p in gen_protos.proto_files()]
    rc = protoc.main(
        [
            "protoc",
            f"-I{ROOT / 'proto'}",
            f"-I{include}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *files,
        ]
    )
    assert rc == 0
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    missing = []
    for f in fds.file:
        comments = {
            tuple(loc.path): (loc.leading_comments + loc.trailing_comments).strip()
            for loc in f.source_code_info.location
        }
        # paths: 4 = message_type, 2 = field, 5 = enum_type, 2 = value, 6 = service, 2 = method
        for si, svc in enumerate(f.service):
            for mi, m in enumerate(svc.method):
                if not comments.get((6, si, 2, mi)):
                    missing.append(f"{f.name}: rpc {svc.name}.{m.name}")
        for mi, msg in enumerate(f.message_type):
            for fi, field in enumerate(msg.field):
                if not comments.get((4, mi, 2, fi)):
                    missing.append(f"{f.name}: field {msg.name}.{field.name}")
        for ei, enum in enumerate(f.enum_type):
            if not comments.get((5, ei)):
                missing.append(f"{f.name}: enum {enum.name}")
    assert not missing, "undocumented protocol elements:\n" + "\n".join(missing)


def test_sdk_imports_with_grpc_and_protobuf_alone():
    """Every module of the SDK (`tandem`) imports with grpcio and protobuf alone, and without the
    server side of the project."""
    code = r"""
import importlib, pkgutil, sys
BLOCKED = ("numpy", "onnxruntime", "ray", "prometheus_client", "tokenizers", "psutil", "torch", "jinja2",
           "aiohttp", "grpc_health", "grpc_reflection", "runtime", "router", "edge_worker", "cloud_worker",
           "stack", "loadtest")
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import tandem
names = [m.name for m in pkgutil.walk_packages(tandem.__path__, "tandem.")]
for name in names:
    importlib.import_module(name)
assert tandem.Client and tandem.AsyncClient and "tandem.v1.inference_pb2_grpc" in names
print("ok", len(names))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.startswith("ok"), res.stderr


def test_the_sdks_distribution_needs_grpcio_and_protobuf_alone():
    """`pip install tandem-llm` installs the SDK's two dependencies; the servers come with extras."""
    requires = importlib.metadata.requires("tandem-llm") or []
    core = sorted(re.match(r"[A-Za-z0-9_.-]+", r).group() for r in requires if "extra ==" not in r)
    assert core == ["grpcio", "protobuf"]
    extras = importlib.metadata.metadata("tandem-llm").get_all("Provides-Extra")
    assert {"server", "router", "edge", "cloud", "all"} <= set(extras)
