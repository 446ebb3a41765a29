"""`lsrec bench`: throughput and latency of a served LSRec, beside the in-process and hardware references."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lsrec.tokenizer.checkpoint import CHECKPOINTS
from lsrec.tokenizer.errors import LSRecError


@dataclass
class BenchConfig:
    checkpoint: str = field(default=f"{CHECKPOINTS}/lsrec-medium-mt", metadata={"help": "checkpoint folder (its split "
                                                                          "gives the requests' histories)"})
    url: str | None = field(default=None, metadata={"help": "a running server on a loopback address; default: start one"})
    data: str | None = field(default=None, metadata={"help": "prepared split (default: the one the checkpoint records)"})
    split: str = field(default="test", metadata={"help": "whose histories: test or valid"})
    concurrency: str = field(default="1,4,16,64", metadata={"help": "concurrency levels, comma-separated"})
    requests: int = field(default=400, metadata={"help": "requests per level at most"})
    seconds: float = field(default=30.0, metadata={"help": "seconds per level at most"})
    k: int = field(default=10, metadata={"help": "items per recommendation (top logprobs)", "short": ["-k"]})
    history_length: int | None = field(default=None, metadata={"help": "use the last N items of users with at least "
                                                               "N (default: every user's whole history, as served)"})
    references: bool = field(default=True, metadata={"help": "also measure HF in-process scoring and the matmul limit"})
    reference_seconds: float = field(default=10.0, metadata={"help": "seconds for each reference measurement"})
    sasrec: str | None = field(default=None, metadata={"help": "a SASRec checkpoint (lsrec baseline sasrec) on the same "
                                                       "split: also measure it in plain PyTorch as a reference"})
    port: int = field(default=8000, metadata={"help": "port for a server this command starts"})
    output: str = field(default="bench", metadata={"help": "writes <output>.json, .md and .png", "short": ["-o"]})
    server_args: list[str] = field(default_factory=list, metadata={"help": "vLLM flags for a server this command starts"})

    def __post_init__(self):
        if not self.levels or min(self.levels) < 1:
            raise LSRecError(f"concurrency levels must be positive integers (got {self.concurrency!r})")
        if self.split not in ("test", "valid"):
            raise LSRecError(f"split must be test or valid (got {self.split!r})")

    @property
    def levels(self) -> list[int]:
        try:
            return [int(c) for c in self.concurrency.split(",") if c.strip()]
        except ValueError:
            raise LSRecError(f"concurrency levels must be positive integers (got {self.concurrency!r})") from None


OPTIONAL_PACKAGES = ("httpx", "matplotlib")  # the `bench` extra: the load generator and the plot


def check_bench_extra() -> None:
    """Fail before the sweep, in one line, when the `bench` extra is missing (not after it, losing it)."""
    import importlib.util

    missing = [name for name in OPTIONAL_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise LSRecError(f"lsrec bench needs {' and '.join(missing)}: install the bench extra "
                         "(bash scripts/install.sh bench, or pip install -e '.[bench]')")


def run_bench(cfg: BenchConfig, console) -> dict:
    """Sweep concurrency levels against an LSRec endpoint; report requests/s, items/s, latency
    percentiles and errors, with the references measured in the same run."""
    from rich.progress import Progress

    from lsrec.serve.query import Query
    from lsrec.serve.server import LSRecServer, ServeConfig
    from lsrec.tokenizer.checkpoint import data_for_checkpoint, load_metadata
    from lsrec.tokenizer.dataset import split_cases

    from .load import check_loopback, completion_bodies, run_level
    from .references import flops_per_request, hf_requests_per_s, matmul_flops_per_s, sasrec_requests_per_s

    check_bench_extra()
    checkpoint, url, split, k, sasrec = cfg.checkpoint, cfg.url, cfg.split, cfg.k, cfg.sasrec
    history_length, server_args, output = cfg.history_length, cfg.server_args, cfg.output
    meta = load_metadata(checkpoint)
    tok = meta.tokenizer
    histories = [c.history for c in split_cases(data_for_checkpoint(checkpoint, cfg.data), split)]
    if history_length:
        histories = [h[-history_length:] for h in histories if len(h) >= history_length]
        if not histories:
            raise LSRecError(f"no user of the {split} split has {history_length} items")
    if sasrec and load_metadata(sasrec).raw["split"]["sha256"] != meta.raw["split"]["sha256"]:
        raise LSRecError(f"--sasrec {sasrec} was trained on another split than {checkpoint}")
    queries = [Query.make(h, k) for h in histories]
    prompt_ids = [q.prompt_ids(tok) for q in queries]
    server = None
    if url is None:
        server = LSRecServer(ServeConfig(checkpoint, port=cfg.port, max_k=max(k, 20), extra_args=list(server_args or [])))
        with console.status(f"starting vLLM on {checkpoint} (log: {server.log_path})"):
            server.start()
        url = server.url
    check_loopback(url)
    bodies = completion_bodies(str(checkpoint) if server else _served_model(url), [q.prompt_text(tok.layout) for q in queries], k)
    sweep = []
    try:
        with Progress(console=console) as progress:
            for level in cfg.levels:
                run_level(url, bodies, level, min(2 * level, 32), 30.0)  # warm-up, not counted
                task = progress.add_task(f"concurrency {level}", total=cfg.requests)
                result = run_level(url, bodies, level, cfg.requests, cfg.seconds, lambda: progress.advance(task))
                sweep.append(result.summary(k))
    finally:
        if server:
            server.stop()
    report = {"checkpoint": str(checkpoint), "url": url, "split": split, "k": k, "history_length": history_length,
              "requests_available": len(bodies), "mean_prompt_tokens": sum(map(len, prompt_ids)) / len(prompt_ids),
              "machine": _machine(), "server_args": list(server_args or []), "sweep": sweep}
    if cfg.references:
        from transformers import AutoConfig

        with console.status("measuring the references (HF in-process, matmul rate)"):
            config = AutoConfig.from_pretrained(checkpoint)
            flops = sum(flops_per_request(config, len(p)) for p in prompt_ids) / len(prompt_ids)
            excludes = [[tok.item_id(i) for i in q.history] for q in queries]
            hf = hf_requests_per_s(checkpoint, prompt_ids, excludes, k, seconds=cfg.reference_seconds)
            cores = os.cpu_count() or 1
            rates = {str(n): matmul_flops_per_s(n, seconds=min(cfg.reference_seconds, 2.0)) for n in sorted({1, cores})}
            baseline = sasrec_requests_per_s(sasrec, histories, k, seconds=cfg.reference_seconds) if sasrec else None
        best = max(level["requests_per_s"] for level in sweep)
        limit = rates[str(cores)] / flops
        report["references"] = {
            "hf_in_process": hf, "flops_per_request": flops, "matmul_flops_per_s_by_threads": rates,
            "hardware_limit_requests_per_s": limit,
            "served_best_over_hf": best / hf["requests_per_s"], "served_best_over_limit": best / limit,
            "served_by_level_over_hf": {s["concurrency"]: s["requests_per_s"] / hf["requests_per_s"] for s in sweep},
            "served_by_level_over_limit": {s["concurrency"]: s["requests_per_s"] / limit for s in sweep},
        }
        if baseline:
            report["references"] |= {"sasrec_in_process": baseline,
                                     "served_best_over_sasrec": best / baseline["requests_per_s"]}
    _write(report, output)
    console.print(markdown_table(report))
    console.print(f"written: {output}.json, {output}.md, {output}.png")
    return report


def _served_model(url: str) -> str:
    import httpx

    return httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]["id"]


def _machine() -> dict:
    import torch

    from .references import machine

    return {**machine(), "vllm": _vllm_version(), "cuda": torch.cuda.is_available(),
            "env": {k: v for k, v in os.environ.items() if k.startswith(("VLLM_CPU", "OMP_"))}}


def _vllm_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("vllm-cpu", "vllm"):
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            pass
    return None


def markdown_table(report: dict) -> str:
    refs = report.get("references")
    head = "| concurrency | requests/s | items/s | p50 ms | p90 ms | p99 ms | errors |"
    if refs:
        head += " vs HF | vs limit |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for s in report["sweep"]:
        ms = [f"{s[f'p{q}_ms']:.1f}" if s[f"p{q}_ms"] is not None else "-" for q in (50, 90, 99)]
        row = f"| {s['concurrency']} | {s['requests_per_s']:.1f} | {s['items_per_s']:.0f} | {' | '.join(ms)} | {s['errors']} |"
        if refs:
            row += (f" {refs['served_by_level_over_hf'][s['concurrency']]:.2f}x |"
                    f" {100 * refs['served_by_level_over_limit'][s['concurrency']]:.1f}% |")
        lines.append(row)
    if refs:
        hf = refs["hf_in_process"]
        lines += ["", f"HF in-process (transformers, {hf['attention']}, batch {hf['batch_size']}, "
                      f"{hf['threads']} threads): {hf['requests_per_s']:.1f} requests/s. Hardware limit: "
                      f"{refs['flops_per_request'] / 1e6:.1f} MFLOP per request at "
                      f"{max(refs['matmul_flops_per_s_by_threads'].values()) / 1e9:.1f} GFLOP/s = "
                      f"{refs['hardware_limit_requests_per_s']:.0f} requests/s."]
        if "sasrec_in_process" in refs:
            sas = refs["sasrec_in_process"]
            lines += ["", f"SASRec in plain PyTorch ({sas['checkpoint']}, {sas['parameters'] / 1e6:.2f}M parameters, "
                          f"batch {sas['batch_size']}, {sas['threads']} threads): {sas['requests_per_s']:.1f} requests/s; "
                          f"best served is {refs['served_best_over_sasrec']:.2f}x that."]
    return "\n".join(lines)


def _write(report: dict, output: str) -> None:
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{output}.json").write_text(json.dumps(report, indent=1))
    Path(f"{output}.md").write_text(markdown_table(report) + "\n")
    plot(report, f"{output}.png")


def plot(report: dict, path: str) -> None:
    """Latency (p50, p99) against throughput, one point per concurrency level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = [s for s in report["sweep"] if s["p50_ms"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    for q, style in (("p50", "o-"), ("p99", "s--")):
        ax.plot([s["requests_per_s"] for s in sweep], [s[f"{q}_ms"] for s in sweep], style, label=f"{q} latency")
    for s in sweep:
        ax.annotate(f"c={s['concurrency']}", (s["requests_per_s"], s["p50_ms"]), textcoords="offset points",
                    xytext=(4, -10), fontsize=8)
    refs = report.get("references")
    if refs:
        ax.axvline(refs["hf_in_process"]["requests_per_s"], color="gray", ls=":", label="HF in-process")
        if "sasrec_in_process" in refs:
            ax.axvline(refs["sasrec_in_process"]["requests_per_s"], color="tab:green", ls="-.", label="SASRec in PyTorch")
    ax.set_xlabel("requests/s")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{Path(report['checkpoint']).name}: latency vs throughput")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

