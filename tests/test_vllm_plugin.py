"""The vLLM logits-processor plugin, driven directly: V1 with real BatchUpdate objects (added,
removed, moved, swapped rows), Model Runner V2 with its real LogitsContext and slot-keyed request
state, per-request validation, the request guard, and inertness for a model that is not LSRec."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("vllm")
torch = pytest.importorskip("torch")

from vllm import SamplingParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality  # noqa: E402
from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext  # noqa: E402

from lsrec.serve import vllm_plugin  # noqa: E402
from lsrec.serve.vllm_plugin import LSRecLogitsProcessor, LSRecRequestGuard  # noqa: E402
from lsrec.tokenizer.checkpoint import write_metadata  # noqa: E402
from lsrec.tokenizer.prompts import answer_rule, prompt_ids  # noqa: E402

pytestmark = pytest.mark.vllm
NEG = float("-inf")


@pytest.fixture(scope="module")
def ckpt(prepared_ml100k, tmp_path_factory):
    """A folder the plugin recognises: lsrec.json with the synthetic data's vocabulary."""
    _, data = prepared_ml100k
    folder = tmp_path_factory.mktemp("ckpt")
    write_metadata(folder, {"vocabulary": data.vocab.to_json(), "catalogue": data.catalogue})
    vllm_plugin._tokenizer_for.cache_clear()
    return folder, data.tokenizer


def vllm_config(model, mode="processed_logprobs", vocab=None, max_seqs=8):
    model_config = SimpleNamespace(model=str(model), logprobs_mode=mode, get_vocab_size=lambda: vocab)
    return SimpleNamespace(model_config=model_config, scheduler_config=SimpleNamespace(max_num_seqs=max_seqs))


def v1_processor(ckpt, **kw):
    folder, tok = ckpt
    return LSRecLogitsProcessor(vllm_config(folder, vocab=len(tok.id_to_token), **kw), torch.device("cpu"), False)


def params(exclude=None):
    return SamplingParams(max_tokens=1, extra_args={"lsrec_exclude": exclude} if exclude is not None else None)


def expected_row(tok, prompt, logits_row, exclude_items=()):
    """Independent of the plugin: the row with every forbidden token at -inf."""
    family, banned = answer_rule(tok, prompt, [tok.item_id(i) for i in exclude_items])
    out = torch.full_like(logits_row, NEG)
    allowed = [i for i in family if i not in banned]
    out[allowed] = logits_row[allowed]
    return out


def requests(tok, data_items):
    """Three prompts for different tasks, each with its own history."""
    items = [tok.item_id(i) for i in data_items]
    genre = tok.genre_id(tok.vocab.genres[1])
    return [
        prompt_ids(tok, "RECOMMEND", items[:3]),
        prompt_ids(tok, "RECOMMEND_GENRE", items[3:6]),
        prompt_ids(tok, "MOVIE_BY_GENRE", items[6:9], genre),
        prompt_ids(tok, "RATE_MOVIE", items[9:11], items[0]),
    ]


def test_masks_follow_batch_updates_including_swaps(ckpt):
    folder, tok = ckpt
    proc = v1_processor(ckpt)
    prompts = requests(tok, tok.vocab.items)
    vocab = len(tok.id_to_token)
    logits = lambda n: torch.randn(n, vocab, generator=torch.Generator().manual_seed(n))  # noqa: E731

    # Step 1: three requests join; the first excludes two more items.
    proc.update_state(BatchUpdate(batch_size=3, removed=[], moved=[], added=[
        (0, params([tok.vocab.items[20], tok.vocab.items[21]]), prompts[0], []),
        (1, params(), prompts[1], []),
        (2, params(), prompts[2], []),
    ]))
    x = logits(3)
    out = proc.apply(x.clone())
    assert torch.equal(out[0], expected_row(tok, prompts[0], x[0], tok.vocab.items[20:22]))
    assert torch.equal(out[1], expected_row(tok, prompts[1], x[1]))
    assert torch.equal(out[2], expected_row(tok, prompts[2], x[2]))
    assert out[0].isfinite().sum() == len(tok.item_range) - 5  # 3 history items + 2 exclusions
    assert out[1].isfinite().sum() == len(tok.genre_range)

    # Step 2: rows 0 and 2 swap.
    proc.update_state(BatchUpdate(batch_size=3, removed=[], added=[], moved=[(0, 2, MoveDirectionality.SWAP)]))
    x = logits(3)
    out = proc.apply(x.clone())
    assert torch.equal(out[0], expected_row(tok, prompts[2], x[0]))
    assert torch.equal(out[2], expected_row(tok, prompts[0], x[2], tok.vocab.items[20:22]))

    # Step 3: row 1 finishes, a new request takes its index, then row 2 moves to 0 (one way),
    # replacing what was there; the batch shrinks to 2.
    proc.update_state(BatchUpdate(batch_size=2, removed=[1], added=[(1, params(), prompts[3], [])],
                                  moved=[(2, 0, MoveDirectionality.UNIDIRECTIONAL)]))
    x = logits(2)
    out = proc.apply(x.clone())
    assert torch.equal(out[0], expected_row(tok, prompts[0], x[0], tok.vocab.items[20:22]))
    assert torch.equal(out[1], expected_row(tok, prompts[3], x[1]))
    assert out[1].isfinite().sum() == len(tok.rating_range)

    # Step 4: everything is removed; a row that is no longer active is left alone.
    proc.update_state(BatchUpdate(batch_size=0, removed=[1, 0], added=[], moved=[]))
    assert not proc.active.any()


def test_special_tokens_are_never_allowed(ckpt):
    folder, tok = ckpt
    proc = v1_processor(ckpt)
    for prompt in requests(tok, tok.vocab.items):
        proc.update_state(BatchUpdate(batch_size=1, removed=[0], added=[(0, params(), prompt, [])], moved=[]))
        out = proc.apply(torch.zeros(1, len(tok.id_to_token)))
        assert out[0, : tok.task_range.stop].eq(NEG).all()


def test_model_runner_v2_slots(ckpt):
    """V2: rows are request slots read through ctx.expanded_idx_mapping; the prompt comes from the
    runner's token buffer after apply_staged_writes."""
    folder, tok = ckpt
    vocab, slots = len(tok.id_to_token), 6
    prompts = requests(tok, tok.vocab.items)
    width = max(map(len, prompts)) + 4
    all_token_ids = SimpleNamespace(gpu=torch.zeros(slots, width, dtype=torch.int32))
    prompt_len = SimpleNamespace(np=np.zeros(slots, dtype=np.int32))
    req_states = SimpleNamespace(device=torch.device("cpu"), max_num_reqs=slots, vocab_size=vocab,
                                 all_token_ids=all_token_ids, prompt_len=prompt_len)
    proc = LSRecLogitsProcessor(vllm_config(folder, vocab=vocab), req_states)

    def admit(slot, prompt, p):
        all_token_ids.gpu[slot, : len(prompt)] = torch.tensor(prompt)  # what the runner writes
        prompt_len.np[slot] = len(prompt)
        assert proc.add_request(slot, p) is True

    admit(4, prompts[0], params([tok.vocab.items[25]]))
    admit(1, prompts[1], params())
    proc.apply_staged_writes()

    def ctx(rows):
        mapping = torch.tensor(rows, dtype=torch.int32)
        return LogitsContext(expanded_idx_mapping=mapping, idx_mapping=mapping, idx_mapping_np=mapping.numpy(),
                             expanded_local_pos=torch.zeros(len(rows), dtype=torch.int32),
                             input_ids=torch.zeros(len(rows), dtype=torch.int32),
                             pos=torch.zeros(len(rows), dtype=torch.int32),
                             seq_lens_upper_bound_np=np.zeros(len(rows), dtype=np.int32))

    x = torch.randn(2, vocab)
    out = proc.apply(x.clone(), ctx([1, 4]))  # batch order differs from slot order
    assert torch.equal(out[0], expected_row(tok, prompts[1], x[0]))
    assert torch.equal(out[1], expected_row(tok, prompts[0], x[1], [tok.vocab.items[25]]))

    # Slot 4 is recycled by a new request: none of the old request's mask may remain.
    admit(4, prompts[2], params())
    proc.apply_staged_writes()
    x = torch.randn(1, vocab)
    assert torch.equal(proc.apply(x.clone(), ctx([4]))[0], expected_row(tok, prompts[2], x[0]))


def test_inert_for_a_model_that_is_not_lsrec(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    proc = LSRecLogitsProcessor(vllm_config(tmp_path, mode="raw_logprobs", vocab=50), torch.device("cpu"), False)
    x = torch.randn(2, 50)
    proc.update_state(BatchUpdate(batch_size=2, removed=[], moved=[], added=[(0, params(), [1, 2, 3], [])]))
    assert proc.apply(x) is x and torch.equal(x, x.clone())
    assert proc.add_request(0, params()) is False
    assert proc.is_argmax_invariant() is False


def test_refuses_raw_logprobs(ckpt):
    with pytest.raises(ValueError, match="--logprobs-mode processed_logprobs"):
        v1_processor(ckpt, mode="raw_logprobs")


@pytest.mark.parametrize("extra, message", [
    ({"lsrec_exclude": "5"}, "must be a list"),
    ({"lsrec_exclude": [1.5]}, "not an item id"),
    ({"lsrec_exclude": ["a b"]}, "not an item id"),
    ({"lsrec_exclude": [True]}, "not an item id"),
    ({"lsrec_exlcude": ["5"]}, "unknown LSRec argument 'lsrec_exlcude'"),
    ({"lsrec_genre_only": "yes"}, "must be true or false"),
])
def test_validate_params_rejects_malformed_arguments(extra, message):
    with pytest.raises(ValueError, match=message):
        LSRecLogitsProcessor.validate_params(SamplingParams(extra_args=extra))


def test_validate_params_accepts_good_and_foreign_requests():
    LSRecLogitsProcessor.validate_params(SamplingParams(extra_args={"lsrec_exclude": ["5", 7]}))
    LSRecLogitsProcessor.validate_params(SamplingParams())  # a stock model's request
    LSRecLogitsProcessor.validate_params(SamplingParams(extra_args={"other_plugin": 1}))


def guard_call(folder, body: dict, path="/v1/completions"):
    """Run the middleware on one request; return (status, forwarded body or error message)."""
    seen = {}

    async def app(scope, receive, send):
        message = await receive()
        seen["body"] = json.loads(message["body"])
        seen["status"] = 200

    async def send(message):
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
        else:
            seen["error"] = json.loads(message["body"])["error"]["message"]

    raw = json.dumps(body).encode()

    async def receive():
        return {"type": "http.request", "body": raw, "more_body": False}

    state = SimpleNamespace(vllm_config=vllm_config(folder))
    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"content-length", str(len(raw)).encode())],
             "app": SimpleNamespace(state=state)}
    asyncio.run(LSRecRequestGuard(app)(scope, receive, send))
    return seen["status"], seen.get("error") or seen.get("body")


def test_guard_names_the_bad_value(ckpt):
    folder, tok = ckpt
    good = "[BOS] [TASK] [RECOMMEND] [ARGUMENTS] item_{} [START]".format(tok.vocab.items[0])
    cases = {
        good.replace(f"item_{tok.vocab.items[0]}", "item_99999"): "unknown item id '99999'",
        "[BOS] [TASK] [RECOMMEND] [ARGUMENTS] [START]": "history is empty",
        f"[BOS] [TASK] [MOVIE_BY_GENRE] [ARGUMENTS] item_{tok.vocab.items[0]} genre_Opera [START]": "unknown genre 'Opera'",
        f"[BOS] [TASK] [RECOMMEND_RATING] [ARGUMENTS] item_{tok.vocab.items[0]} rating_9 [START]": "unknown rating '9'",
        f"[BOS] [TASK] [DANCE] [ARGUMENTS] item_{tok.vocab.items[0]} [START]": "unknown token '[DANCE]'",
    }
    for prompt, message in cases.items():
        status, error = guard_call(folder, {"model": "m", "prompt": prompt})
        assert status == 400 and message in error, (prompt, error)
    status, error = guard_call(folder, {"model": "m", "prompt": good, "vllm_xargs": {"lsrec_exclude": ["nope"]}})
    assert status == 400 and "unknown item id 'nope'" in error
    status, body = guard_call(folder, {"model": "m", "prompt": good})
    assert status == 200 and body["prompt"] == prompt_ids(tok, "RECOMMEND", [tok.item_id(tok.vocab.items[0])])


def test_guard_keeps_the_most_recent_items_and_masks_the_rest(ckpt):
    folder, tok = ckpt
    items = (tok.vocab.items * 20)[:250]  # longer than the 200-token context
    prompt = "[BOS] [TASK] [RECOMMEND] [ARGUMENTS] " + " ".join(f"item_{i}" for i in items) + " [START]"
    status, body = guard_call(folder, {"model": "m", "prompt": prompt, "vllm_xargs": {"lsrec_exclude": ["3"]}})
    assert status == 200
    assert body["prompt"] == prompt_ids(tok, "RECOMMEND", [tok.item_id(i) for i in items])
    assert len(body["prompt"]) == 198
    kept = set(items[-193:])
    assert set(body["vllm_xargs"]["lsrec_exclude"]) == {"3"} | (set(items[:-193]) - set())
    assert all(i in kept or i in body["vllm_xargs"]["lsrec_exclude"] for i in items)


def test_guard_passes_other_models_and_paths_through(ckpt, tmp_path):
    status, body = guard_call(tmp_path, {"model": "m", "prompt": "hello world"})
    assert status == 200 and body["prompt"] == "hello world"
    folder, _ = ckpt
    status, body = guard_call(folder, {"messages": []}, path="/v1/chat/completions")
    assert status == 200 and body == {"messages": []}


def test_genre_only_keeps_a_movie_by_genre_answer_to_its_genre(ckpt, prepared_ml100k):
    """`lsrec_genre_only`: the plugin masks every item outside the asked genre (and the history), the
    same rule as the offline ranker; other prompts of the batch keep their own masks."""
    from lsrec.tokenizer.prompts import genre_item_ids

    vllm_plugin._genre_items_for.cache_clear()
    _, data = prepared_ml100k
    folder, tok = ckpt
    genre = data.vocab.genres[1]
    of_genre = {tok.item_id(i) for i, entry in data.catalogue.items() if genre in (entry.get("genres") or [])}
    assert 0 < len(of_genre) < len(tok.item_range)
    items = [tok.item_id(i) for i in data.vocab.items[:4]]
    prompts = [prompt_ids(tok, "MOVIE_BY_GENRE", items, tok.genre_id(genre)), prompt_ids(tok, "RECOMMEND", items)]
    proc = v1_processor(ckpt)
    genre_only = SamplingParams(max_tokens=1, extra_args={"lsrec_genre_only": True})
    proc.update_state(BatchUpdate(batch_size=2, removed=[], moved=[],
                                  added=[(0, genre_only, prompts[0], []), (1, genre_only, prompts[1], [])]))
    logits = torch.zeros(2, len(tok.id_to_token))
    out = proc.apply(logits.clone())
    allowed = {i for i in range(out.shape[1]) if out[0, i] > NEG}
    assert allowed == of_genre - set(items)
    family, banned = answer_rule(tok, prompts[0], [], genre_item_ids(tok, data.catalogue))
    assert allowed == set(family) - banned
    # a RECOMMEND prompt has no genre to keep to: its mask is the plain one
    assert torch.equal(out[1], expected_row(tok, prompts[1], logits[1]))


def test_guard_refuses_genre_only_without_a_genre_prompt(ckpt):
    folder, tok = ckpt
    prompt = "[BOS] [TASK] [RECOMMEND] [ARGUMENTS] item_{} [START]".format(tok.vocab.items[0])
    status, error = guard_call(folder, {"model": "m", "prompt": prompt, "vllm_xargs": {"lsrec_genre_only": True}})
    assert status == 400 and "applies to MOVIE_BY_GENRE prompts; this one is RECOMMEND" in error


def test_guard_rewrites_either_layout_into_the_models(ckpt, tmp_path):
    """A history-first checkpoint gets a task-first prompt in its own layout, and the other way round."""
    from lsrec.tokenizer.checkpoint import load_metadata
    from lsrec.tokenizer.vocab import ItemTokenizer

    folder, tok = ckpt
    raw = load_metadata(folder).raw
    history_first = tmp_path / "history-first"
    history_first.mkdir()
    write_metadata(history_first, {**raw, "prompt_layout": "history-first"})
    vllm_plugin._tokenizer_for.cache_clear()
    items = [f"item_{i}" for i in tok.vocab.items[:3]]
    task_first_text = "[BOS] [TASK] [RECOMMEND] [ARGUMENTS] " + " ".join(items) + " [START]"
    history_first_text = "[BOS] " + " ".join(items) + " [TASK] [RECOMMEND] [START]"
    ids = [tok.token_to_id[i] for i in items]
    for text in (task_first_text, history_first_text):
        status, body = guard_call(history_first, {"model": "m", "prompt": text})
        assert status == 200 and body["prompt"] == prompt_ids(ItemTokenizer(tok.vocab, "history-first"), "RECOMMEND", ids)
        status, body = guard_call(folder, {"model": "m", "prompt": text})
        assert status == 200 and body["prompt"] == prompt_ids(tok, "RECOMMEND", ids)
