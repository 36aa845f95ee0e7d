"""Model profiles: which tokenizer, draft and target a deployment runs.

A profile names the shared tokenizer.json, the draft (edge) model folder and the target (cloud)
model folder, each holding a decoder-with-past ``model.onnx`` and optionally ``config.json``.
Built in:

- ``stdlib``: the small pair shipped as this package's data in ``runtime/shipped/stdlib`` (code
  continuations; for tests and CI; its card and training script are in the repository's ``models/``);
- ``smollm2``: SmolLM2-135M-Instruct as the target and a draft distilled for it, built into the
  models cache by ``tandem models build smollm2`` (``$TANDEM_MODELS``, default
  ``~/.cache/tandem/models``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

SHIPPED_MODELS = Path(__file__).resolve().parent / "shipped"  # package data: works from any install
MODELS_ENV = "TANDEM_MODELS"


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    name: str = "stdlib"
    tokenizer: Path = SHIPPED_MODELS / "stdlib" / "tokenizer.json"
    draft: Path = SHIPPED_MODELS / "stdlib" / "draft"
    target: Path = SHIPPED_MODELS / "stdlib" / "target"
    build_hint: str = (
        "the stdlib pair ships inside the tandem-llm package (runtime/shipped/stdlib; "
        "rebuild it from a checkout with `python models/train.py`)"
    )

    def check(self) -> None:
        """Raise FileNotFoundError naming the first missing file, with a hint on how to get it."""
        missing = self.missing()
        if missing:
            what, p = missing
            raise FileNotFoundError(
                f"model profile {self.name!r}: {what} not found at {p}. {self.build_hint[0].upper()}"
                f"{self.build_hint[1:]}; for your own models set [model] tokenizer/draft/target "
                "in the config file."
            )

    def missing(self) -> tuple[str, Path] | None:
        """The first missing (what, path), or None when every file is there."""
        for what, p in (
            ("tokenizer", self.tokenizer),
            ("draft", self.draft / "model.onnx"),
            ("target", self.target / "model.onnx"),
        ):
            if not p.exists():
                return what, p
        return None


def models_cache(env: Mapping[str, str] | None = None) -> Path:
    """Where built profiles live: $TANDEM_MODELS, else ~/.cache/tandem/models."""
    env = os.environ if env is None else env
    return Path(env.get(MODELS_ENV) or Path.home() / ".cache" / "tandem" / "models")


def smollm2_profile(cache: Path) -> ModelProfile:
    root = cache / "smollm2"
    return ModelProfile(
        "smollm2",
        root / "tokenizer.json",
        root / "draft",
        root / "target",
        build_hint="build it with `tandem models build smollm2` (needs the train extra: "
        "pip install -e '.[train]'), which writes it into the models cache "
        f"({MODELS_ENV}, default ~/.cache/tandem/models)",
    )


def builtin_profile(name: str, env: Mapping[str, str] | None = None) -> ModelProfile:
    """The built-in profile `name` (files not checked). Raises KeyError for an unknown name."""
    if name == "stdlib":
        return ModelProfile()
    if name == "smollm2":
        return smollm2_profile(models_cache(env))
    raise KeyError(name)


BUILTIN_PROFILES = ("stdlib", "smollm2")


def profile_from_config(data: Mapping, base: Path | None = None, override: str | None = None) -> ModelProfile:
    """The profile a component runs: `override` (a --model flag) if given, else the config's [model]
    table (a built-in `name`, or tokenizer/draft/target paths relative to `base`). Files are checked.
    Raises ConfigError for an unknown name and FileNotFoundError, with how to get it, for a missing file."""
    from runtime.configfile import ConfigError, build

    table = {"name": override} if override else dict(data.get("model", {}))
    name = table.get("name", "stdlib")
    if set(table) <= {"name"}:
        if name not in BUILTIN_PROFILES:
            where = "--model" if override else "model.name"
            raise ConfigError(
                where,
                f"unknown profile {name!r}; built in: {', '.join(BUILTIN_PROFILES)} "
                f"(or give model.tokenizer, model.draft and model.target paths)",
            )
        profile = builtin_profile(name)
    else:
        profile = build(ModelProfile, table, "model", base)
    profile.check()
    return profile


def is_chat(profile: ModelProfile) -> bool:
    """Whether the profile's models have a chat template of their own (instruction-tuned)."""
    return (profile.tokenizer.parent / "chat_template.jinja").is_file()
