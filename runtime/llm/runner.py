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
from collections.abc import Iterator, Sequence

import numpy as np

from runtime.llm.decoder import ContextOverflow, OnnxDecoder
from runtime.llm.kv_cache import CacheEntry, SessionCache, common_prefix
from runtime.llm.sampling import distribution, make_rng, pick, sample_from
from runtime.llm.speculative import (
    RoundResult,
    SparseDist,
    draft_distribution,
    greedy_round,
    greedy_tree_round,
    sampling_round,
)
from runtime.llm.stopping import StopMatcher
from runtime.llm.tokenizer import Detokenizer, Tokenizer
from runtime.params import SamplingConfig, check_context, tree_problem
from tandem.errors import InvalidArgument


@dataclasses.dataclass(frozen=True)
class ForwardResult:
    logits: np.ndarray  # [n_out, vocab]
    cached_tokens: int  # context tokens reused from the session cache
    computed_tokens: int  # tokens run through the model in this pass (0 when served from cache)
    compute_ms: float
    alternatives: tuple[np.ndarray, ...] = ()  # per Pass.alternatives: its logits [n_out, vocab]


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
    # a tree draft's other root-to-leaf paths (token_ids is the greedy chain), each as long
    alternatives: list[list[int]] = dataclasses.field(default_factory=list)
    computed_tokens: int = 0  # tokens run through the model, all paths together


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    round: RoundResult  # accepted count and the correction or bonus token
    cached_tokens: int
    compute_ms: float
    forward_passes: int
    path: int = 0  # the path committed: 0 the drafted chain, i its alternative i − 1


def round_rng(seed: int | None, position: int, salt: int) -> np.random.Generator:
    """The generator for one round: a function of the request's seed and the context length, so a
    seeded request is reproducible whatever worker serves each round (None: fresh entropy)."""
    return np.random.default_rng(None if seed is None else [seed, position, salt])


BATCH_MAX_NEW = (
    32  # rows with more new tokens (prefills) run alone: padding others to them costs more than it saves
)


@dataclasses.dataclass(frozen=True)
class Pass:
    """One row of a batched forward pass: the logits after the last `n_out` of `tokens`.
    `steady`: the session passes again at once (decoding), so its cache may stay in the batch's arrays.
    `alternatives`: other token sequences as long as `tokens` (a draft tree's other paths), each
    a row of the same forward pass on the prefix they share with `tokens`; never cached."""

    session_id: str
    tokens: Sequence[int]
    n_out: int = 1
    op: _Operation | None = None
    steady: bool = False
    alternatives: tuple[Sequence[int], ...] = ()


@dataclasses.dataclass
class _Row:
    tokens: list[int]
    start: int  # tokens reused from the cache
    past: list[np.ndarray] | None  # their keys and values (None: nothing cached)
    shared: tuple[list, int] | None  # CacheEntry.shared, when the whole entry is reused
    steady: bool
    store: bool = True  # False: an alternative row, whose cache is not kept

    @property
    def new(self) -> int:
        return len(self.tokens) - self.start


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
            raise ValueError(
                f"tokenizer has {tokenizer.vocab_size} entries but the model's vocabulary "
                f"is {decoder.spec.vocab_size}"
            )
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
                raise InvalidArgument(
                    "input.token_ids", f"token id {bad} outside the vocabulary [0, {self.spec.vocab_size})"
                )
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

    def logits_after(
        self, session_id: str, tokens: Sequence[int], n_out: int = 1, op: _Operation | None = None
    ) -> ForwardResult:
        """Logits following each of the last `n_out` tokens, caching all `tokens` under the session
        (unless `op` was released meanwhile).

        Reuses the longest cached prefix of `tokens`; computes the rest in one forward pass.
        Raises ContextOverflow when `tokens` do not fit the context.
        """
        return self.logits_after_many([Pass(session_id, tokens, n_out, op)])[0]

    def logits_after_many(self, passes: Sequence[Pass]) -> list[ForwardResult]:
        """`logits_after` for several sessions in one forward pass (a padded batch), in order.

        Each row reuses its session's longest cached prefix; the rows' cached pasts are padded to
        the longest (before them, masked out) and their new tokens to the longest (after them,
        where causality hides them from real queries), so each row computes what it would alone —
        up to the order of floating-point sums. A session may appear once per call. Raises
        ContextOverflow (for the first row that does not fit) before computing anything.
        """
        if len({p.session_id for p in passes}) != len(passes):
            raise ValueError("a session may appear only once in a batch")
        for p in passes:
            if not 1 <= p.n_out <= len(p.tokens):
                raise ValueError(f"n_out must be in [1, {len(p.tokens)}], got {p.n_out}")
            if any(len(a) != len(p.tokens) for a in p.alternatives):
                raise ValueError("alternatives must be as long as the pass's tokens")
            if len(p.tokens) > self.spec.max_context:
                raise ContextOverflow(len(p.tokens), self.spec.max_context)
        locks = [self._lock(sid) for sid in sorted(p.session_id for p in passes)]  # one order: no deadlock
        with contextlib.ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            t0 = time.perf_counter()
            results: list[ForwardResult | None] = [None] * len(passes)
            rows: list[tuple[int, _Row]] = []
            units: list[list[int]] = []  # rows computed in the same forward pass: a pass and its alternatives
            for i, p in enumerate(passes):
                tokens = list(p.tokens)
                alts = [list(a) for a in p.alternatives]
                entry = self.cache.get(p.session_id)
                reuse = common_prefix(entry.tokens, tokens) if entry else 0
                if (
                    not alts
                    and entry
                    and reuse == len(tokens) == len(entry.tokens)
                    and p.n_out == 1
                    and entry.last_logits is not None
                ):
                    self.cache.record_lookup(reuse)
                    results[i] = ForwardResult(entry.last_logits[None], reuse, 0, 0.0)
                    continue
                start = min([reuse, len(tokens) - p.n_out] + [common_prefix(a, tokens) for a in alts])
                self.cache.record_lookup(start)
                past = [a[:, :, :start, :] for a in entry.past] if entry and start else None
                shared = entry.shared if entry and start == len(entry.tokens) and not alts else None
                units.append(list(range(len(rows), len(rows) + 1 + len(alts))))
                rows.append((i, _Row(tokens, start, past, shared, p.steady)))
                rows += [(i, _Row(a, start, past, None, False, store=False)) for a in alts]
            if rows:
                plain = [r for _, r in rows]
                out: list = [None] * len(rows)
                for group in self._groups(plain, units):
                    for g, res in zip(group, self._forward_rows([plain[g] for g in group])):
                        out[g] = res
                ms = (time.perf_counter() - t0) * 1e3
                alt_logits: dict[int, list[np.ndarray]] = {}
                computed: dict[int, int] = {}  # per pass: new tokens of its rows, alternatives included
                for i, row in rows:
                    computed[i] = computed.get(i, 0) + row.new
                with self._locks_guard:  # so a concurrent release() cannot slip between check and put
                    for (i, row), (lg, present, shared) in zip(rows, out):
                        if not row.store:
                            alt_logits.setdefault(i, []).append(lg[-passes[i].n_out :])
                            continue
                        op = passes[i].op
                        if op is None or not op.released:
                            self.cache.put(
                                passes[i].session_id, CacheEntry(row.tokens, present, lg[-1], shared)
                            )
                        results[i] = ForwardResult(lg[-passes[i].n_out :], row.start, computed[i], ms)
                for i, alts in alt_logits.items():
                    results[i] = dataclasses.replace(results[i], alternatives=tuple(alts))
            return results  # type: ignore[return-value]

    def _groups(self, rows: list[_Row], units: list[list[int]]) -> list[list[int]]:
        """Indices of `rows` in groups worth padding together, each unit (a pass and its
        alternatives) whole: a long prompt's prefill (more than BATCH_MAX_NEW new tokens) alone,
        the rest together while the padded pass fits the context."""
        groups: list[list[int]] = []
        batch: list[int] = []
        for unit in units:
            if any(rows[j].new > BATCH_MAX_NEW for j in unit):
                groups.append(list(unit))
                continue
            trial = batch + unit
            padded = max(rows[j].start for j in trial) + max(rows[j].new for j in trial)
            if batch and padded > self.spec.max_context:
                groups.append(batch)
                trial = list(unit)
            batch = trial
        if batch:
            groups.append(batch)
        return groups

    def _forward_rows(self, rows: list[_Row]) -> list[tuple[np.ndarray, list[np.ndarray], tuple | None]]:
        """One pass over `rows`; per row its logits [new, vocab], its new cache (2 × layers
        [1, kv_heads, len(tokens), head_dim]) and, when that cache is a view of the batch's present
        (see CacheEntry.shared), (present, row)."""
        if len(rows) == 1:  # no padding: exactly the unbatched pass
            row = rows[0]
            new = np.asarray(row.tokens[row.start :], dtype=np.int64)[None]  # [1, s]
            mask = np.ones((1, len(row.tokens)), dtype=np.int64)  # [1, p+s]
            pos = np.arange(row.start, len(row.tokens), dtype=np.int64)[None]  # [1, s]
            logits, present = self.decoder.forward(new, mask, pos, row.past or self.decoder.empty_past(1))
            return [(logits[0], present, None)]
        b = len(rows)
        S = max(r.new for r in rows)  # padded new tokens
        spec = self.spec
        base = rows[0].shared[0] if rows[0].shared else None
        if (
            base is not None
            and base[0].shape[0] == b
            and all(
                r.shared is not None and r.shared[0] is base and r.shared[1] == i for i, r in enumerate(rows)
            )
        ):
            # the same sessions as the batch before, in the same order, each continuing it: that
            # batch's present is this one's past as it stands (each row's past ends at its end)
            past, P = base, base[0].shape[2]
        else:
            P = max(r.start for r in rows)  # padded past
            past = [
                np.empty((b, spec.num_kv_heads, P, spec.head_dim), dtype=spec.cache_dtype)
                for _ in range(2 * spec.num_layers)
            ]
            for i, r in enumerate(rows):
                for layer, a in enumerate(past):
                    a[i, :, : P - r.start, :] = 0  # padding: masked out, but finite
                    if r.past is not None:
                        a[i, :, P - r.start :, :] = r.past[layer][0]
        # a row's cached past ends where the new tokens begin (slot P), so its cache afterwards is
        # one contiguous run of slots, [P − start, P + s)
        new = np.zeros((b, S), dtype=np.int64)  # [b, S]
        mask = np.zeros((b, P + S), dtype=np.int64)  # [b, P+S]: 1 = attend
        pos = np.zeros((b, S), dtype=np.int64)  # [b, S]
        for i, r in enumerate(rows):
            new[i, : r.new] = r.tokens[r.start :]
            mask[i, P - r.start : P + r.new] = 1
            pos[i] = np.minimum(np.arange(r.start, r.start + S), spec.max_context - 1)
        logits, present = self.decoder.forward(new, mask, pos, past)  # [b, S, vocab], [b, h, P+S, hd]
        # sessions that step again at once (CLOUD decoding) keep views of this present, which the
        # next batch takes whole; the others get copies, so that a session waiting between calls
        # does not keep the whole batch's arrays alive
        keep = all(r.steady and r.new == S for r in rows)
        out = []
        for i, r in enumerate(rows):
            views = [a[i : i + 1, :, P - r.start : P + r.new] for a in present]
            out.append(
                (
                    logits[i, : r.new],
                    views if keep else [v.copy() for v in views] if r.store else [],
                    (present, i) if keep else None,
                )
            )
        return out

    def release(self, session_id: str) -> bool:
        """Drop the session's cache; False when it held none (nor had work in flight)."""
        with self._locks_guard:
            self._locks.pop(session_id, None)
            ops = self._ops.pop(session_id, [])
            for op in ops:
                op.released = True
            return self.cache.pop(session_id) or bool(ops)

    # ------------------------------------------------------------------ speculative decoding

    def draft(
        self,
        session_id: str,
        context: Sequence[int],
        n: int,
        cfg: SamplingConfig,
        support_size: int = 32,
        cancel: threading.Event | None = None,
        branching: Sequence[int] = (),
    ) -> DraftResult:
        """Draft `n` tokens continuing `context` (one pass per token, cache reused).

        Greedy when cfg is greedy; otherwise each token is drawn from q = the request's sampling
        transform of the draft logits restricted to the top `support_size` tokens, returned in `dists`.
        Greedy with `branching` (k_1, k_2, …): a tree — every path branches into its top k_d
        tokens at depth d (1 past the list) — returned as the greedy chain and its alternatives,
        all `n` long, each depth one forward pass over all paths (rows of one Pass).
        Raises ContextOverflow when context plus n − 1 drafted tokens do not fit. Stops early (with
        fewer tokens) once `cancel` is set: the caller no longer wants the block.
        """
        if n < 1:
            raise InvalidArgument("num_tokens", f"must be > 0, got {n}")
        problem = tree_problem(branching, cfg.greedy)
        if problem:
            raise InvalidArgument("branching", problem)
        if any(k > 1 for k in branching):
            return self._draft_tree(session_id, list(context), n, list(branching), cancel)
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

    def _draft_tree(
        self,
        session_id: str,
        context: list[int],
        n: int,
        branching: list[int],
        cancel: threading.Event | None,
    ) -> DraftResult:
        paths: list[list[int]] = [[]]
        cached = passes = computed = 0
        ms = 0.0
        with self._operation(session_id) as op:
            for depth in range(n):
                if (cancel is not None and cancel.is_set()) or op.released:
                    break
                res = self.logits_after_many(
                    [
                        Pass(
                            session_id,
                            context + paths[0],
                            1,
                            op,
                            alternatives=tuple(context + p for p in paths[1:]),
                        )
                    ]
                )[0]
                cached = res.cached_tokens if depth == 0 else cached
                passes += 1 if res.computed_tokens else 0
                computed += res.computed_tokens
                ms += res.compute_ms
                width = branching[depth] if depth < len(branching) else 1
                rows = [res.logits[-1]] + [a[-1] for a in res.alternatives]
                paths = [p + [t] for p, row in zip(paths, rows) for t in top_tokens(row, width)]
        return DraftResult(paths[0], None, cached, ms, passes, paths[1:], computed)

    def verify(
        self,
        session_id: str,
        context: Sequence[int],
        drafted: Sequence[int],
        dists: Sequence[SparseDist] | None,
        cfg: SamplingConfig,
        alternatives: Sequence[Sequence[int]] = (),
    ) -> VerifyResult:
        """Score `drafted` after `context` in one target pass and apply the acceptance rule.

        Greedy: accept while drafted tokens equal the target's argmax. Sampling: speculative
        sampling against q = `dists` (required then, one per drafted token). `alternatives`
        (greedy only): a draft tree's other paths, as long as `drafted`, scored in the same pass;
        the path accepted furthest is committed (VerifyResult.path).
        """
        check_verify(drafted, dists, cfg, alternatives)
        with self.operation(session_id) as op:
            res = self.logits_after_many([verify_pass(session_id, context, drafted, op, alternatives)])[0]
        return finish_verify(res, context, drafted, dists, cfg, alternatives)

    @contextlib.contextmanager
    def operation(self, session_id: str) -> Iterator[_Operation]:
        """Work on `session_id` (a pass built outside the runner, e.g. for a batch): a release
        meanwhile marks it, so its pass does not re-create the released cache. A caller that leaves
        the block by an exception (cancelled while its pass waits for the model, say) has given the
        pass up: it is marked too, since a release after the block no longer finds it."""
        with self._operation(session_id) as op:
            try:
                yield op
            except BaseException:
                op.released = True
                raise

    # ------------------------------------------------------------------ generation

    def generate(
        self, session_id: str | None, prompt: Sequence[int], cfg: SamplingConfig
    ) -> Iterator[GenerateStep]:
        """Autoregressive generation, one step per token, lazily (each next() runs one pass).

        Raises InvalidArgument up front when prompt plus cfg.max_new_tokens exceed the context.
        The session keeps its cache afterwards; a None session uses a throwaway one.
        """
        gen = self.generation(session_id or f"tmp-{uuid.uuid4().hex}", prompt, cfg)
        return self._generate(gen, session_id is None)

    def generation(self, session_id: str, prompt: Sequence[int], cfg: SamplingConfig) -> Generation:
        """A generation driven step by step from outside (``next_pass`` → a forward pass, maybe
        batched with other sessions' → ``advance``). Raises InvalidArgument up front when prompt
        plus cfg.max_new_tokens exceed the context."""
        check_context(len(prompt), cfg.max_new_tokens, self.spec.max_context)
        return Generation(session_id, list(prompt), cfg, self.tokenizer, self.spec.eos_token_id)

    def _generate(self, gen: Generation, throwaway: bool) -> Iterator[GenerateStep]:
        try:
            while not gen.done:
                yield gen.advance(self.logits_after_many([gen.next_pass()])[0])
        finally:
            if throwaway:
                self.release(gen.session_id)


class Generation:
    """The state of one autoregressive generation between its forward passes: the tokens so far,
    the sampler's generator, the detokenizer and the stop strings. Not thread-safe."""

    def __init__(
        self,
        session_id: str,
        tokens: list[int],
        cfg: SamplingConfig,
        tokenizer: Tokenizer,
        eos_token_id: int | None,
    ) -> None:
        self.session_id = session_id
        self.tokens = tokens
        self.cfg = cfg
        self.rng = make_rng(cfg.seed)
        self.detok = Detokenizer(tokenizer, tokens)
        self.stops = StopMatcher(cfg.stop)
        self.eos = eos_token_id
        self.produced = 0
        self.done = cfg.max_new_tokens <= 0

    def next_pass(self, op: _Operation | None = None) -> Pass:
        """The forward pass the next token needs (`op`: ModelRunner.operation of the session)."""
        return Pass(self.session_id, list(self.tokens), 1, op, steady=True)

    def advance(self, res: ForwardResult) -> GenerateStep:
        """Pick the next token from `res` (the result of next_pass()) and render it."""
        cfg, i = self.cfg, self.produced
        tok = pick(res.logits[-1], cfg, self.rng)
        self.tokens.append(tok)
        self.produced += 1
        finish = None
        if tok == self.eos:
            text, finish = self.stops.feed(self.detok.flush()) + self.stops.flush(), "eos"
        else:
            text = self.stops.feed(self.detok.add([tok]))
            if self.stops.stopped:
                finish = "stop_string"
            elif i == cfg.max_new_tokens - 1:
                text += self.stops.feed(self.detok.flush()) + self.stops.flush()
                finish = "length"
        self.done = finish is not None
        return GenerateStep(
            [tok],
            text,
            finish,
            res.compute_ms,
            1 if res.computed_tokens else 0,
            res.cached_tokens if i == 0 else 0,
        )


def top_tokens(logits: np.ndarray, k: int) -> list[int]:
    """The k highest-scoring token ids, best first; the first is np.argmax's (lowest id on ties)."""
    if k <= 1:
        return [int(np.argmax(logits))]
    top = np.argpartition(-logits, k - 1)[:k]
    return [int(t) for t in sorted(top.tolist(), key=lambda t: (-logits[t], t))]


def check_verify(
    drafted: Sequence[int],
    dists: Sequence[SparseDist] | None,
    cfg: SamplingConfig,
    alternatives: Sequence[Sequence[int]] = (),
) -> None:
    if not cfg.greedy and (dists is None or len(dists) != len(drafted)):
        raise InvalidArgument(
            "draft_distributions", "sampling needs one draft distribution per drafted token"
        )
    if alternatives and not cfg.greedy:
        raise InvalidArgument(
            "draft_alternatives", "tree drafts are verified greedily only (sampling takes one chain)"
        )
    for i, alt in enumerate(alternatives):
        if len(alt) != len(drafted):
            raise InvalidArgument(
                f"draft_alternatives[{i}]",
                f"has {len(alt)} tokens, the draft {len(drafted)}: every path of a tree is as long",
            )


def verify_pass(
    session_id: str,
    context: Sequence[int],
    drafted: Sequence[int],
    op: _Operation | None,
    alternatives: Sequence[Sequence[int]] = (),
) -> Pass:
    """The target pass a verify needs: the logits after the context and each drafted token (and
    after each alternative path's tokens, in rows of the same pass)."""
    ctx = list(context)
    return Pass(
        session_id,
        ctx + list(drafted),
        len(drafted) + 1,
        op,
        alternatives=tuple(ctx + list(a) for a in alternatives),
    )


def finish_verify(
    res: ForwardResult,
    context: Sequence[int],
    drafted: Sequence[int],
    dists: Sequence[SparseDist] | None,
    cfg: SamplingConfig,
    alternatives: Sequence[Sequence[int]] = (),
) -> VerifyResult:
    """The acceptance rule over a verify pass's logits [γ+1, vocab] (and its alternatives')."""
    drafted = list(drafted)
    path = 0
    if alternatives:
        path, rnd = greedy_tree_round(
            [drafted] + [list(a) for a in alternatives], [res.logits, *res.alternatives]
        )
    elif cfg.greedy:
        rnd = greedy_round(drafted, res.logits)
    else:
        probs = np.stack([distribution(row, cfg) for row in res.logits])  # [γ+1, vocab]
        rnd = sampling_round(drafted, list(dists or ()), probs, round_rng(cfg.seed, len(context), 2))
    return VerifyResult(rnd, res.cached_tokens, res.compute_ms, 1 if res.computed_tokens else 0, path)
