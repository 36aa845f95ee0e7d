"""Chat rendering: a model's own Jinja chat template beside its tokenizer.json, else the plain one."""

from __future__ import annotations

import shutil

import pytest

from runtime.llm.tokenizer import CHAT_TEMPLATE_FILE, Tokenizer
from tandem.errors import InvalidArgument

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_a_models_own_template_renders_its_turns(profile, tmp_path):
    shutil.copy(profile.tokenizer, tmp_path / "tokenizer.json")
    (tmp_path / CHAT_TEMPLATE_FILE).write_text(CHATML)
    tok = Tokenizer(tmp_path / "tokenizer.json")
    text = tok.render_chat([("system", "Be brief."), ("user", "Hi?")])
    assert (
        text
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tok.id == Tokenizer(profile.tokenizer).id  # the template is not part of the tokenization
    with pytest.raises(InvalidArgument) as err:
        tok.render_chat([("user", "a"), ("robot", "b")])
    assert err.value.field == "messages[1].role"


def test_without_one_the_plain_template_is_used(profile):
    assert Tokenizer(profile.tokenizer).render_chat([("user", "hi")]) == "user: hi\nassistant:"
    with pytest.raises(InvalidArgument):
        Tokenizer(profile.tokenizer).render_chat([])
