"""The shape of the code: the largest modules and the longest functions, now and at a git revision.

    .venv/bin/python bench/code_shape.py                 # the working tree against 853a546 (before issue 16)
    .venv/bin/python bench/code_shape.py --before HEAD~5 --top 5

Counts the packages' Python source (generated protobuf code excluded; tests, benches and model
scripts are not packages and are left out). Prints JSON, then a markdown table.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tandem", "runtime", "router", "edge_worker", "cloud_worker", "stack", "loadtest")
BEFORE = "853a546"  # main before issue 16 (layers, one cost model, a policy of stages)


def sources(rev: str | None) -> dict[str, str]:
    """Path → text of every package module at `rev` (None: the working tree)."""
    if rev is None:
        paths = [p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
        files = {p: (ROOT / p).read_text() for p in paths}
    else:
        listed = subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", rev], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        paths = [p for p in listed if p.endswith(".py") and p.split("/")[0] in PACKAGES]
        files = {
            p: subprocess.run(["git", "show", f"{rev}:{p}"], cwd=ROOT, capture_output=True, text=True).stdout
            for p in paths
        }
    return {p: t for p, t in files.items() if "_pb2" not in p}


def shape(files: dict[str, str], top: int) -> dict:
    modules = sorted(((len(t.splitlines()), p) for p, t in files.items()), reverse=True)
    functions = []
    for path, text in files.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{path}:{node.name}"))
    functions.sort(reverse=True)
    return {
        "modules": len(files),
        "lines": sum(n for n, _ in modules),
        "largest_modules": [{"path": p, "lines": n} for n, p in modules[:top]],
        "longest_functions": [{"function": f, "lines": n} for n, f in functions[:top]],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default=BEFORE, help=f"the git revision to compare with (default {BEFORE})")
    ap.add_argument("--top", type=int, default=3)
    args = ap.parse_args(argv)
    result = {"before": {"rev": args.before, **shape(sources(args.before), args.top)},
              "after": {"rev": "working tree", **shape(sources(None), args.top)}}  # fmt: skip
    print(json.dumps(result, indent=2))
    print()
    print("| | modules | lines | largest module | longest function |")
    print("| --- | ---: | ---: | --- | --- |")
    for key, s in result.items():
        m, f = s["largest_modules"][0], s["longest_functions"][0]
        print(
            f"| {key} ({s['rev']}) | {s['modules']} | {s['lines']} | `{m['path']}`: {m['lines']} lines "
            f"| `{f['function']}`: {f['lines']} lines |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
