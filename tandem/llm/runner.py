"""ModelRunner: a decoder, its tokenizer and its session caches, as plain-data operations.

Vocabulary: a *context* is the committed token ids (prompt plus output so far); a *session* names a
KV cache that holds some prefix of a context. Every operation takes the whole context and reuses the
longest cached prefix, so callers never reason about cache state and a lost cache costs only time.

Shapes: logits rows are [vocab] float32; ``logits_after(..., n_out)`` returns [n_out, vocab].
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from typing import Iterator, Sequence

import numpy as np

from tandem.errors import InvalidArgument
from tandem.llm.decoder import ContextOverflow, OnnxDecoder
from tandem.llm.kv_cache import CacheEntry, SessionCache, common_prefix
from tandem.llm.sampling import distribution, make_rng, pick, sample_from
from tandem.llm.speculative import RoundResult, SparseDist, draft_distribution, greedy_round, sampling_round
from tandem.llm.stopping import StopMatcher
from tandem.llm.tokenizer import Detokenizer, Tokenizer
from tandem.params import SamplingConfig, check_context


@dataclasses.dataclass(frozen=True)
class ForwardResult:
    logits: np.ndarray  # [n_out, vocab]
    cached_tokens: int  # context tokens reused from the session cache
    computed_tokens: int  # tokens run through the model in this pass (0 when served from cache)
    compute_ms: float


@dataclasses.dataclass(frozen=True)
class GenerateStep:
    """One generated token. `text` may be empty (a character still incomplete, or held back by a
    stop-string prefix); `finish_reason` is set on the last step ("length", "eos", "stop_string")."""

    token_ids: list[int]
    text: str
    finish_reason: str | None
    compute_ms: float
    forward_passes: int
    cached_tokens: int


@dataclasses.dataclass(frozen=True)
class DraftResult:
    token_ids: list[int]  # drafted tokens d_1..d_γ
    dists: list[SparseDist] | None  # sampling only: q_1..q_γ, exactly what each token was drawn from
    cached_tokens: int  # context tokens reused from the session cache
    compute_ms: float
    forward_passes: int


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    round: RoundResult  # accepted count and the correction or bonus token
    cached_tokens: int
    compute_ms: float
    forward_passes: int


def round_rng(seed: int | None, position: int, salt: int) -> np.random.Generator:
    """The generator for one round: a function of the request's seed and the context length, so a
    seeded request is reproducible whatever worker serves each round (None: fresh entropy)."""
    return np.random.default_rng(None if seed is None else [seed, position, salt])


class _Operation:
    """A draft or verify in progress on a session; `released` is set when the session is released
    meanwhile, so the operation stops storing cache entries the caller has already given up."""

    __slots__ = ("released",)

    def __init__(self) -> None:
        self.released = False


class ModelRunner:
    """Thread-safe per session: calls on one session are serialized by a per-session lock.

    Release wins over work in flight: a draft or verify running when its session is released
    finishes without re-creating the session's cache (a pre-draft the router abandoned would
    otherwise hold memory until evicted).
    """

    def __init__(self, decoder: OnnxDecoder, tokenizer: Tokenizer, cache: SessionCache | None = None) -> None:
        if tokenizer.vocab_size > decoder.spec.vocab_size:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} entries but the model's vocabulary "
                             f"is {decoder.spec.vocab_size}")
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.cache = cache or SessionCache()
        self.spec = decoder.spec
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._ops: dict[str, list[_Operation]] = {}  # guarded by _locks_guard

    # ------------------------------------------------------------------ inputs

    def prompt_ids(
        self,
        text: str | None = None,
        messages: Sequence[tuple[str, str]] | None = None,
        token_ids: Sequence[int] | None = None,
    ) -> list[int]:
        """Token ids of exactly one of: raw text, chat messages, or ids (validated against the vocab)."""
        given = [x for x in (text, messages, token_ids) if x]
        if len(given) != 1:
            raise InvalidArgument("input", "exactly one of prompt text, messages or token ids must be set")
        if text:
            ids = self.tokenizer.encode(text)
        elif messages:
            ids = self.tokenizer.encode(self.tokenizer.render_chat(messages))
        else:
            ids = list(token_ids or ())
            bad = next((t for t in ids if not 0 <= t < self.spec.vocab_size), None)
            if bad is not None:
                raise InvalidArgument("input.token_ids", f"token id {bad} outside the vocabulary "
                                                         f"[0, {self.spec.vocab_size})")
        if not ids:
            raise InvalidArgument("prompt", "the prompt tokenizes to nothing")
        return ids

    # ------------------------------------------------------------------ core pass

    def _lock(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(session_id, threading.Lock())

    @contextlib.contextmanager
    def _operation(self, session_id: str) -> Iterator[_Operation]:
        op = _Operation()
        with self._locks_guard:
            self._ops.setdefault(session_id, []).append(op)
        try:
            yield op
        finally:
            with self._locks_guard:
                ops = self._ops.get(session_id, [])
                if op in ops:
                    ops.remove(op)
                if not ops:
                    self._ops.pop(session_id, None)

    def logits_after(self, session_id: str, tokens: Sequence[int], n_out: int = 1,
                     op: _Operation | None = None) -> ForwardResult:
        """Logits following each of the last `n_out` tokens, caching all `tokens` under the session
        (unless `op` was released meanwhile).

        Reuses the longest cached prefix of `tokens`; computes the rest in one forward pass.
        Raises ContextOverflow when `tokens` do not fit the context.
        """
        tokens = list(tokens)
        if not 1 <= n_out <= len(tokens):
            raise ValueError(f"n_out must be in [1, {len(tokens)}], got {n_out}")
        if len(tokens) > self.spec.max_context:
            raise ContextOverflow(len(tokens), self.spec.max_context)
        with self._lock(session_id):
            t0 = time.perf_counter()
            entry = self.cache.get(session_id)
            reuse = common_prefix(entry.tokens, tokens) if entry else 0
            if entry and reuse == len(tokens) == len(entry.tokens) and n_out == 1 and entry.last_logits is not None:
                self.cache.record_lookup(reuse)
                return ForwardResult(entry.last_logits[None], reuse, 0, (time.perf_counter() - t0) * 1e3)
            start = min(reuse, len(tokens) - n_out)  # the pass must cover the last n_out positions
            self.cache.record_lookup(start)
            if entry and start > 0:
                past = [a[:, :, :start, :] for a in entry.past]
            else:
                past = self.decoder.empty_past(1)
            new = np.asarray(tokens[start:], dtype=np.int64)[None]  # [1, s]
            mask = np.ones((1, len(tokens)), dtype=np.int64)  # [1, p+s]
            pos = np.arange(start, len(tokens), dtype=np.int64)[None]  # [1, s]
            logits, present = self.decoder.forward(new, mask, pos, past)  # [1, s, vocab]
            with self._locks_guard:  # so a concurrent release() cannot slip between check and put
                if op is None or not op.released:
                    self.cache.put(session_id, CacheEntry(tokens, present, logits[0, -1]))
            return ForwardResult(logits[0, -n_out:], start, len(tokens) - start, (time.perf_counter() - t0) * 1e3)

    def release(self, session_id: str) -> bool:
        """Drop the session's cache; False when it held none (nor had work in flight)."""
        with self._locks_guard:
            self._locks.pop(session_id, None)
            ops = self._ops.pop(session_id, [])
            for op in ops:
                op.released = True
            return self.cache.pop(session_id) or bool(ops)

    # ------------------------------------------------------------------ speculative decoding

    def draft(self, session_id: str, context: Sequence[int], n: int, cfg: SamplingConfig,
              support_size: int = 32, cancel: threading.Event | None = None) -> DraftResult:
        """Draft `n` tokens continuing `context` (one pass per token, cache reused).

        Greedy when cfg is greedy; otherwise each token is drawn from q = the request's sampling
        transform of the draft logits restricted to the top `support_size` tokens, returned in `dists`.
        Raises ContextOverflow when context plus n − 1 drafted tokens do not fit. Stops early (with
        fewer tokens) once `cancel` is set: the caller no longer wants the block.
        """
        if n < 1:
            raise InvalidArgument("num_tokens", f"must be > 0, got {n}")
        rng = round_rng(cfg.seed, len(context), 1)
        tokens = list(context)
        out: list[int] = []
        dists: list[SparseDist] = []
        cached = passes = 0
        ms = 0.0
        with self._operation(session_id) as op:
            for i in range(n):
                if (cancel is not None and cancel.is_set()) or op.released:
                    break
                res = self.logits_after(session_id, tokens, 1, op)
                cached = res.cached_tokens if i == 0 else cached
                passes += 1 if res.computed_tokens else 0
                ms += res.compute_ms
                if cfg.greedy:
                    tok = int(np.argmax(res.logits[-1]))
                else:
                    q = draft_distribution(res.logits[-1], cfg, support_size)
                    tok = sample_from(q.dense(self.spec.vocab_size), rng)
                    dists.append(q)
                out.append(tok)
                tokens.append(tok)
        return DraftResult(out, None if cfg.greedy else dists, cached, ms, passes)

    def verify(self, session_id: str, context: Sequence[int], drafted: Sequence[int],
               dists: Sequence[SparseDist] | None, cfg: SamplingConfig) -> VerifyResult:
        """Score `drafted` after `context` in one target pass and apply the acceptance rule.

        Greedy: accept while drafted tokens equal the target's argmax. Sampling: speculative
        sampling against q = `dists` (required then, one per drafted token).
        """
        drafted = list(drafted)
        if not cfg.greedy and (dists is None or len(dists) != len(drafted)):
            raise InvalidArgument("draft_distributions", "sampling needs one draft distribution per drafted token")
        with self._operation(session_id) as op:
            res = self.logits_after(session_id, list(context) + drafted, len(drafted) + 1, op)  # [γ+1, vocab]
        if cfg.greedy:
            rnd = greedy_round(drafted, res.logits)
        else:
            probs = np.stack([distribution(row, cfg) for row in res.logits])  # [γ+1, vocab]
            rnd = sampling_round(drafted, list(dists or ()), probs, round_rng(cfg.seed, len(context), 2))
        return VerifyResult(rnd, res.cached_tokens, res.compute_ms, 1 if res.computed_tokens else 0)

    # ------------------------------------------------------------------ generation

    def generate(
        self, session_id: str | None, prompt: Sequence[int], cfg: SamplingConfig
    ) -> Iterator[GenerateStep]:
        """Autoregressive generation, one step per token, lazily (each next() runs one pass).

        Raises InvalidArgument up front when prompt plus cfg.max_new_tokens exceed the context.
        The session keeps its cache afterwards; a None session uses a throwaway one.
        """
        check_context(len(prompt), cfg.max_new_tokens, self.spec.max_context)
        return self._generate(session_id or f"tmp-{uuid.uuid4().hex}", list(prompt), cfg, session_id is None)

    def _generate(self, sid: str, tokens: list[int], cfg: SamplingConfig, throwaway: bool) -> Iterator[GenerateStep]:
        rng = make_rng(cfg.seed)
        detok = Detokenizer(self.tokenizer, tokens)
        stops = StopMatcher(cfg.stop)
        eos = self.spec.eos_token_id
        try:
            for i in range(cfg.max_new_tokens):
                res = self.logits_after(sid, tokens, 1)
                tok = pick(res.logits[-1], cfg, rng)
                tokens.append(tok)
                finish = None
                if tok == eos:
                    text, finish = stops.feed(detok.flush()) + stops.flush(), "eos"
                else:
                    text = stops.feed(detok.add([tok]))
                    if stops.stopped:
                        finish = "stop_string"
                    elif i == cfg.max_new_tokens - 1:
                        text += stops.feed(detok.flush()) + stops.flush()
                        finish = "length"
                yield GenerateStep([tok], text, finish, res.compute_ms, 1 if res.computed_tokens else 0,
                                   res.cached_tokens if i == 0 else 0)
                if finish:
                    return
        finally:
            if throwaway:
                self.release(sid)
