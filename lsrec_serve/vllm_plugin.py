"""Everything LSRec adds to a vLLM server; the only module that imports vllm.

- `LSRecLogitsProcessor`, registered under the `vllm.logits_processors` entry point, so every vLLM
  server in an environment with `lsrec` installed loads it. For an LSRec checkpoint it lets each
  prompt be answered only by its task's token family, minus every item in the prompt and the items
  a request excludes (`vllm_xargs={"lsrec_exclude": [item ids]}`), and, for a MOVIE_BY_GENRE prompt
  with `"lsrec_genre_only": true`, every item outside the asked genre: the same rule as offline
  evaluation (lsrec.tokenizer.prompts.answer_rule). For any other model it does nothing.
  One class serves both model runners: V1 (CPU; rows keyed by batch index, `BatchUpdate`) and Model
  Runner V2 (the GPU default; rows keyed by request slot, `add_request` / `apply(logits, ctx)`).
- `LSRecRequestGuard`, an ASGI middleware (`--middleware lsrec.serve.vllm_plugin.LSRecRequestGuard`,
  added by `lsrec serve`): checks completion prompts against the catalogue before vLLM tokenizes
  them, so a bad request gets HTTP 400 naming the bad value, rewrites a prompt in either layout into
  the model's, and keeps the most recent items of a history longer than the context (the dropped
  ones stay masked).
"""

from __future__ import annotations

import json
from functools import lru_cache

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality
from vllm.v1.sample.logits_processor import LogitsProcessor as V1LogitsProcessor
from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcessor as V2LogitsProcessor

from lsrec.tokenizer.checkpoint import is_checkpoint, load_metadata
from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.prompts import answer_rule, genre_item_ids, parse_prompt
from lsrec.tokenizer.vocab import item_token

from .query import EXCLUDE_ARG, GENRE_ONLY_ARG

LOGPROBS_FLAG = "--logprobs-mode processed_logprobs"


@lru_cache(maxsize=4)
def _tokenizer_for(model_path: str):
    """The LSRec tokenizer of a served model folder, or None when it is not an LSRec checkpoint."""
    return load_metadata(model_path).tokenizer if is_checkpoint(model_path) else None


@lru_cache(maxsize=4)
def _genre_items_for(model_path: str) -> dict[int, set[int]]:
    """Genre token id -> item token ids of a served LSRec checkpoint's catalogue."""
    return genre_item_ids(_tokenizer_for(model_path), load_metadata(model_path).catalogue)


class LSRecLogitsProcessor(V1LogitsProcessor, V2LogitsProcessor):
    """Masks, per request, every token the shared answer rule forbids. State is a dense boolean
    `banned[row, vocab]` plus `active[row]`; rows are batch indices (V1) or request slots (V2)."""

    def __init__(self, vllm_config, *runner_args):
        model_config = vllm_config.model_config
        self.model_path = str(model_config.model)
        self.tok = _tokenizer_for(self.model_path)
        if self.tok is None:
            return  # not an LSRec checkpoint: inert
        if model_config.logprobs_mode != "processed_logprobs":
            raise ValueError(
                f"LSRec: {model_config.model} is served with logprobs mode {model_config.logprobs_mode!r}, "
                f"so masked items would still appear in top logprobs; start vLLM with {LOGPROBS_FLAG}")
        if len(runner_args) == 1:  # Model Runner V2: (req_states,)
            self.req_states = runner_args[0]
            device, rows = self.req_states.device, self.req_states.max_num_reqs
        else:  # V1: (device, is_pin_memory)
            device, rows = runner_args[0], vllm_config.scheduler_config.max_num_seqs
        self.vocab_size = model_config.get_vocab_size()
        self.banned = torch.zeros(rows, self.vocab_size, dtype=torch.bool, device=device)
        self.active = torch.zeros(rows, dtype=torch.bool, device=device)
        self.pending: dict[int, object] = {}  # V2 slots waiting for their prompt tokens

    @classmethod
    def validate_params(cls, params) -> None:
        """Runs in the frontend for every request to every model: a ValueError fails that request
        only (HTTP 400)."""
        extra = params.extra_args or {}
        unknown = sorted(k for k in extra if k.startswith("lsrec_") and k not in (EXCLUDE_ARG, GENRE_ONLY_ARG))
        if unknown:
            raise ValueError(f"unknown LSRec argument {unknown[0]!r}; LSRec's are {EXCLUDE_ARG!r} and {GENRE_ONLY_ARG!r}")
        if not isinstance(extra.get(GENRE_ONLY_ARG, False), bool):
            raise ValueError(f"{GENRE_ONLY_ARG} must be true or false, got {extra[GENRE_ONLY_ARG]!r}")
        value = extra.get(EXCLUDE_ARG)
        if value is None:
            return
        if not isinstance(value, list):
            raise ValueError(f"{EXCLUDE_ARG} must be a list of item ids, got {value!r}")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int)) or not str(item).strip() \
                    or any(c.isspace() for c in str(item)):
                raise ValueError(f"{EXCLUDE_ARG}: {item!r} is not an item id")

    def is_argmax_invariant(self) -> bool:
        return False  # masking changes which token wins

    def _banned_row(self, prompt_ids, params) -> torch.Tensor:
        tok = self.tok
        # Unknown ids were refused by the guard; without it they exclude nothing (no such item exists).
        extra = params.extra_args or {}
        tokens = (item_token(str(i)) for i in extra.get(EXCLUDE_ARG) or [])
        exclude = [tok.token_to_id[t] for t in tokens if t in tok.token_to_id]
        genre_items = _genre_items_for(self.model_path) if extra.get(GENRE_ONLY_ARG) else None
        family, banned = answer_rule(tok, prompt_ids or [], exclude, genre_items)
        row = torch.ones(self.vocab_size, dtype=torch.bool)
        row[family.start : family.stop] = False
        if banned:
            row[sorted(banned)] = True
        return row

    # --- V1: rows are batch indices; apply the update in the documented order: removed, added, moved.
    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if self.tok is None or batch_update is None:
            return
        for index in batch_update.removed:
            self.active[index] = False
        for index, params, prompt_ids, _output_ids in batch_update.added:
            self.banned[index] = self._banned_row(prompt_ids, params).to(self.banned.device)
            self.active[index] = True
        for a, b, direction in batch_update.moved:
            if direction == MoveDirectionality.SWAP:
                self.banned[[a, b]] = self.banned[[b, a]]
                self.active[[a, b]] = self.active[[b, a]]
            else:
                self.banned[b], self.active[b] = self.banned[a], self.active[a]
                self.active[a] = False

    # --- V2: rows are request slots; the prompt is read back from the runner's token buffer.
    def add_request(self, req_idx: int, sampling_params) -> bool:
        if self.tok is None:
            return False
        self.active[req_idx] = False  # the slot may hold a previous request's state
        self.pending[req_idx] = sampling_params
        return True

    def apply_staged_writes(self) -> None:
        for slot, params in self.pending.items():
            length = int(self.req_states.prompt_len.np[slot])
            prompt_ids = self.req_states.all_token_ids.gpu[slot, :length].tolist()
            self.banned[slot] = self._banned_row(prompt_ids, params).to(self.banned.device)
            self.active[slot] = True
        self.pending.clear()

    def apply(self, logits: torch.Tensor, ctx=None) -> torch.Tensor:
        if self.tok is None:
            return logits
        if ctx is None:  # V1: logits row i is batch index i
            rows = slice(0, logits.shape[0])
            mask = self.banned[rows] & self.active[rows, None]
        else:  # V2: logits row -> request slot
            slots = ctx.expanded_idx_mapping
            mask = self.banned[slots] & self.active[slots, None]
        return logits.masked_fill_(mask[:, : logits.shape[1]], float("-inf"))


class LSRecRequestGuard:
    """Pure ASGI middleware for /v1/completions on an LSRec checkpoint: a prompt with an unknown
    item, genre, rating or task, an empty history, or a malformed exclusion list gets HTTP 400
    naming the bad value. A history longer than the context keeps its most recent items; the
    dropped items are added to the exclusions so they stay masked. Other models pass through."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or \
                not scope["path"].rstrip("/").endswith("/completions") or scope["path"].endswith("chat/completions"):
            return await self.app(scope, receive, send)
        tok = _tokenizer_for(str(scope["app"].state.vllm_config.model_config.model))
        if tok is None:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        try:
            body = _checked_body(tok, body)
        except (LSRecError, ValueError) as e:
            return await _send_json(send, 400, {"error": {
                "message": str(e), "type": "BadRequestError", "param": None, "code": 400}})
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        scope = {**scope, "headers": headers + [(b"content-length", str(len(body)).encode())]}
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


def _checked_body(tok, raw: bytes) -> bytes:
    try:
        request = json.loads(raw or b"{}")
    except ValueError:
        return raw  # vLLM answers malformed JSON itself
    if not isinstance(request, dict) or "prompt" not in request:
        return raw
    prompt = request["prompt"]
    batch = isinstance(prompt, list) and bool(prompt) and isinstance(prompt[0], (list, str))
    prompts = prompt if batch else [prompt]
    extra = dict(request.get("vllm_xargs") or {})
    exclude = extra.get(EXCLUDE_ARG, [])
    if exclude and isinstance(exclude, list):
        for item in exclude:
            tok.item_id(item)  # names an unknown item
    fitted, dropped = [], set()
    for p in prompts:
        parsed = parse_prompt(tok, p)
        if extra.get(GENRE_ONLY_ARG) and parsed.task != "MOVIE_BY_GENRE":
            raise LSRecError(f"{GENRE_ONLY_ARG} applies to MOVIE_BY_GENRE prompts; this one is {parsed.task}")
        fitted.append(parsed.ids)
        dropped.update(parsed.dropped_items)
    if dropped:
        extra[EXCLUDE_ARG] = [*(exclude if isinstance(exclude, list) else []), *sorted(dropped)]
        request["vllm_xargs"] = extra
    request["prompt"] = fitted if batch else fitted[0]
    return json.dumps(request).encode()


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(send, status: int, content: dict) -> None:
    body = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
