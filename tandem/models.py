"""Model profiles: which tokenizer, draft and target a deployment runs.

A profile names the shared tokenizer.json, the draft (edge) model folder and the target (cloud)
model folder, each holding a decoder-with-past ``model.onnx`` and optionally ``config.json``.
The built-in ``stdlib`` profile is the pair shipped in the repository's ``models/stdlib``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = REPO_ROOT / "models"


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    name: str = "stdlib"
    tokenizer: Path = SHIPPED_MODELS / "stdlib" / "tokenizer.json"
    draft: Path = SHIPPED_MODELS / "stdlib" / "draft"
    target: Path = SHIPPED_MODELS / "stdlib" / "target"

    def check(self) -> None:
        """Raise FileNotFoundError naming the first missing file, with a hint on how to get it."""
        for what, p in (("tokenizer", self.tokenizer), ("draft", self.draft / "model.onnx"),
                        ("target", self.target / "model.onnx")):
            if not p.exists():
                raise FileNotFoundError(
                    f"model profile {self.name!r}: {what} not found at {p}. The stdlib pair ships in the "
                    f"repository's models/stdlib (rebuild it with `python models/train.py`); for your own "
                    f"models set [model] tokenizer/draft/target in the config file."
                )


BUILTIN_PROFILES = {"stdlib": ModelProfile()}
