"""Model profiles: built-in names, the --model override, missing files named with how to build them."""

from __future__ import annotations

import pytest

from runtime.configfile import ConfigError
from runtime.profiles import builtin_profile, is_chat, models_cache, profile_from_config
from stack.demo import choose_model


def test_the_models_cache_follows_the_environment(tmp_path):
    assert models_cache({"TANDEM_MODELS": str(tmp_path)}) == tmp_path
    assert models_cache({}).parts[-3:] == (".cache", "tandem", "models")
    p = builtin_profile("smollm2", {"TANDEM_MODELS": str(tmp_path)})
    assert p.target == tmp_path / "smollm2" / "target" and p.draft == tmp_path / "smollm2" / "draft"


def test_stdlib_is_the_default_and_ships(profile):
    p = profile_from_config({})
    assert p.name == "stdlib" and p.missing() is None
    assert not is_chat(p)  # code continuations: no chat template of its own


def test_the_flag_overrides_the_config_and_names_itself_when_wrong():
    with pytest.raises(ConfigError, match=r"--model: unknown profile 'gpt9'.*stdlib, smollm2"):
        profile_from_config({"model": {"name": "stdlib"}}, override="gpt9")
    with pytest.raises(ConfigError, match=r"model.name: unknown profile 'gpt9'"):
        profile_from_config({"model": {"name": "gpt9"}})


def test_an_unbuilt_smollm2_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TANDEM_MODELS", str(tmp_path))
    with pytest.raises(
        FileNotFoundError, match=r"'smollm2': tokenizer not found .*tandem models build smollm2"
    ):
        profile_from_config({}, override="smollm2")


def test_the_demo_picks_smollm2_only_once_built(tmp_path, monkeypatch, profile):
    monkeypatch.setenv("TANDEM_MODELS", str(tmp_path))
    name, why = choose_model(None, None)
    assert name == "stdlib" and "tandem models build smollm2" in why
    root = tmp_path / "smollm2"
    for f in ("draft/model.onnx", "target/model.onnx", "tokenizer.json"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_bytes(b"")
    assert choose_model(None, None)[0] == "smollm2"
    assert choose_model(None, "stdlib")[0] == "stdlib"  # the flag wins
    config = tmp_path / "t.toml"
    config.write_text('[model]\nname = "stdlib"\n')
    assert choose_model(config, None)[0] is None  # the config's own [model] table decides
