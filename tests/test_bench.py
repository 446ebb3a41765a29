"""lsrec-bench: the statistics on known inputs, the FLOP count against a hand count, the loopback rule,
and the load generator against a local stand-in server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from lsrec.bench.load import LevelResult, check_loopback, percentile, run_level
from lsrec.bench.references import flops_per_request
from lsrec.tokenizer.errors import LSRecError


def test_percentile_matches_hand_computed_values():
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 0) == 15 and percentile(values, 100) == 50
    assert percentile(values, 50) == 35
    assert percentile(values, 40) == 29.0  # rank 1.6: 20 + 0.6 * (35 - 20)
    assert percentile([3, 1, 2], 90) == pytest.approx(2.8)  # sorted first; rank 1.8: 2 + 0.8 * (3 - 2)
    assert percentile([7], 99) == 7
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_summary_rates_and_percentiles():
    result = LevelResult(concurrency=4, latencies=[0.010, 0.020, 0.030, 0.040], errors=1, wall=2.0)
    s = result.summary(k=10)
    assert s["requests"] == 5 and s["errors"] == 1
    assert s["requests_per_s"] == 2.0 and s["items_per_s"] == 20.0  # 4 successes in 2 s, 10 items each
    assert s["p50_ms"] == pytest.approx(25.0) and s["p99_ms"] == pytest.approx(39.7)
    assert LevelResult(1, [], 3, 1.0).summary(10)["p50_ms"] is None


def test_flops_per_request_hand_count():
    config = SimpleNamespace(hidden_size=4, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
                             num_key_value_heads=1, vocab_size=10, head_dim=None)
    # per token: 2 * (q 16 + k,v 2*4*2=16 + o 16 + mlp 3*4*8=96) = 288; 3 tokens = 864
    # attention: 2 * 4 * 3 * 4 = 96; output head for one position: 2 * 4 * 10 = 80
    assert flops_per_request(config, 3) == 864 + 96 + 80


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.org", "http://0.0.0.0:8000"])
def test_only_loopback(url):
    with pytest.raises(LSRecError, match="loopback"):
        check_loopback(url)


def test_run_level_counts_successes_and_errors():
    """A stand-in endpoint that fails every third request: the counts and bounds are exact."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body["prompt"])
            status = 400 if len(seen) % 3 == 0 else 200
            payload = json.dumps({"ok": status == 200}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_level(url, [{"prompt": "a"}, {"prompt": "b"}], concurrency=3, max_requests=12, max_seconds=30)
    finally:
        server.shutdown()
    assert len(result.latencies) == 8 and result.errors == 4 and len(seen) == 12
    assert sorted(seen) == ["a"] * 6 + ["b"] * 6
    assert "HTTP 400" in result.error_examples[0]


def test_sasrec_reference_ranks_the_same_histories(tmp_path):
    """The plain-PyTorch SASRec reference: a rate over real rankings, with the markdown line that reports it."""
    from test_sasrec import write_chain

    from lsrec.bench.bench import markdown_table
    from lsrec.bench.references import sasrec_requests_per_s
    from lsrec.tokenizer.dataset import DataConfig, prepare
    from lsrec.models.sasrec import SASRecConfig
    from lsrec.train.sasrec import train_sasrec

    data = prepare(DataConfig(source=str(write_chain(tmp_path)), output=str(tmp_path / "data")))
    folder = train_sasrec(SASRecConfig(data=str(data.folder), hidden=8, max_epochs=1, output_dir=str(tmp_path)),
                          log=lambda *_: None, progress=False)
    histories = [s.items[:-1] for s in data.sequences]
    out = sasrec_requests_per_s(str(folder), histories, k=5, batch_size=16, seconds=0.2)
    assert out["requests"] % len(histories) == 0 and out["requests"] >= len(histories)
    assert out["requests_per_s"] == pytest.approx(out["requests"] / out["seconds"], rel=0.01)
    report = {"sweep": [{"concurrency": 1, "requests_per_s": 10.0, "items_per_s": 50.0, "p50_ms": 1.0, "p90_ms": 1.0,
                         "p99_ms": 1.0, "errors": 0}],
              "references": {"hf_in_process": {"attention": "sdpa", "batch_size": 64, "threads": 2, "requests_per_s": 5.0},
                             "flops_per_request": 1e6, "matmul_flops_per_s_by_threads": {"2": 1e9},
                             "hardware_limit_requests_per_s": 1000.0, "served_by_level_over_hf": {1: 2.0},
                             "served_by_level_over_limit": {1: 0.01}, "sasrec_in_process": out,
                             "served_best_over_sasrec": 10.0 / out["requests_per_s"]}}
    assert "SASRec in plain PyTorch" in markdown_table(report)


def test_a_missing_bench_extra_stops_before_the_sweep(monkeypatch):
    """Without matplotlib the command says which extra to install, before any server or request."""
    import importlib.util

    from lsrec.bench import bench

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(LSRecError, match=r"needs matplotlib: install the bench extra"):
        bench.run_bench(bench.BenchConfig(checkpoint="no/such/checkpoint"), console=None)


def test_reading_the_matmul_rate_leaves_the_runs_random_draws_alone():
    """`lsrec train-speed` reads the rate after the Trainer has seeded torch: the batches it then
    times must be the ones `lsrec train` draws."""
    import torch

    from lsrec.bench.references import matmul_flops_per_s

    torch.manual_seed(1)
    expected = torch.rand(5)
    torch.manual_seed(1)
    assert matmul_flops_per_s(1, size=64, seconds=0.01) > 0
    assert torch.equal(torch.rand(5), expected)
