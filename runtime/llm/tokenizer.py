"""Tokenizer wrapper over a Hugging Face ``tokenizer.json`` (the ``tokenizers`` library).

Also: a stable tokenizer id (draft and target must share one), a minimal chat renderer, and an
incremental detokenizer that never splits a multi-byte character across text deltas.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from tandem.errors import InvalidArgument

# Used when a model ships no chat template of its own: one "role: content" line per turn, then
# the assistant's cue. A model with its own (a Hugging Face Jinja chat template in
# chat_template.jinja beside tokenizer.json) is rendered with that instead.
DEFAULT_CHAT_TEMPLATE = "plain"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
CHAT_ROLES = ("system", "user", "assistant")


def tokenizer_id_of(path: Path) -> str:
    """Digest of the vocabulary, merges and added tokens: equal ids mean identical tokenization."""
    return tokenizer_id_from_json(Path(path).read_text(encoding="utf-8"))


def tokenizer_id_from_json(text: str) -> str:
    data = json.loads(text)
    model = data.get("model", {})
    payload = {
        "type": model.get("type"),
        "vocab": model.get("vocab"),
        "merges": model.get("merges"),
        "added": sorted((t.get("id"), t.get("content")) for t in data.get("added_tokens", [])),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class Tokenizer:
    """Text ↔ token ids for one model family."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        json_text: str | None = None,
        chat_template: str | None = None,
    ) -> None:
        """Load from a tokenizer.json path, or from its text (e.g. fetched from a worker). The chat
        template is `chat_template`, else the chat_template.jinja beside the file, else the plain one."""
        from tokenizers import Tokenizer as _HFTokenizer

        if json_text is None:
            self.path = Path(path)  # type: ignore[arg-type]
            if not self.path.is_file():
                raise FileNotFoundError(f"tokenizer file not found: {self.path}")
            json_text = self.path.read_text(encoding="utf-8")
            beside = self.path.parent / CHAT_TEMPLATE_FILE
            if chat_template is None and beside.is_file():
                chat_template = beside.read_text(encoding="utf-8")
        else:
            self.path = None  # type: ignore[assignment]
        self.chat_template = chat_template or None
        self._template = None
        self.json_text = json_text
        self._tok = _HFTokenizer.from_str(json_text)
        self.id = tokenizer_id_from_json(json_text)
        self.vocab_size = self._tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        """Render (role, content) turns, ending with the assistant's cue: with the model's own chat
        template (sandboxed Jinja, as Hugging Face renders it) or the plain one. Raises
        InvalidArgument naming the message whose role is unknown."""
        if not messages:
            raise InvalidArgument("messages", "at least one message is required")
        for i, (role, _) in enumerate(messages):
            if role not in CHAT_ROLES:
                raise InvalidArgument(
                    f"messages[{i}].role", f"must be one of {', '.join(CHAT_ROLES)}, got {role!r}"
                )
        if self.chat_template:
            if self._template is None:
                from jinja2.sandbox import ImmutableSandboxedEnvironment

                env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
                self._template = env.from_string(self.chat_template)
            return self._template.render(
                messages=[{"role": r, "content": c} for r, c in messages], add_generation_prompt=True
            )
        return "".join(f"{role}: {content}\n" for role, content in messages) + "assistant:"


class Detokenizer:
    """Turns a growing token sequence into text deltas.

    Decodes a short window behind the new tokens (byte-level BPE needs the preceding bytes) and
    withholds a delta while it ends in an incomplete UTF-8 sequence (U+FFFD), so concatenating
    the deltas gives the decoded text of all new tokens.
    """

    def __init__(self, tokenizer: Tokenizer, context: Sequence[int] = ()) -> None:
        self._tok = tokenizer
        self._ids = list(context)
        self._prefix = max(0, len(self._ids) - 6)
        self._read = len(self._ids)

    def add(self, new_ids: Sequence[int]) -> str:
        self._ids.extend(new_ids)
        before = self._tok.decode(self._ids[self._prefix : self._read])
        after = self._tok.decode(self._ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """Whatever is withheld (possibly ending in U+FFFD) at the end of generation."""
        before = self._tok.decode(self._ids[self._prefix : self._read])
        after = self._tok.decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return after[len(before) :]
