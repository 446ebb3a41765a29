"""LSRec-medium at growing catalogue sizes on synthetic logs shaped like ML-100K (`lsrec data
synthetic`): training speed and peak memory (`lsrec train-speed`'s measurement: batch 8, histories
of up to 200 tokens, every position labelled, RECOMMEND only) and serving (an untrained checkpoint of
that vocabulary behind `lsrec serve`: masking checked, top-100, requests/s), beside a FLOP model.

    python scripts/catalogue_scale.py [--sizes 1682,10700,100000,1000000] [--steps 5] [--out docs/bench/catalogue]

Weights do not change speed or memory, so serving uses an untrained model (nothing here is about
quality). Each size's prepared data and checkpoint go under runs/catalogue/ and are reused."""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import time
from pathlib import Path

ROOT = Path("runs/catalogue")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepared(items: int):
    from lsrec.tokenizer import dataset
    from lsrec.tokenizer.synthetic import SyntheticConfig, write

    folder = ROOT / f"data-{items}"
    if not (folder / "manifest.json").is_file():
        csv = ROOT / f"synthetic-{items}.csv"
        if not csv.is_file():
            write(SyntheticConfig(items=items, output=str(csv)))
        dataset.prepare(dataset.DataConfig(source=str(csv), output=str(folder), overwrite=True))
    return dataset.load(folder)


def training(data, steps: int) -> dict:
    from lsrec.train.config import TrainConfig
    from lsrec.train.speed import measure_training_speed

    cfg = TrainConfig(data=str(data.folder), preset="medium", multitask=False, batch_size=8, start_copies=0,
                      name=f"catalogue-{len(data.vocab.items)}")
    return measure_training_speed(cfg, steps, log=lambda line: print("  ", line, flush=True))


def untrained_checkpoint(data) -> Path:
    from lsrec.models.llama import build_model
    from lsrec.train.trainer import save_model

    folder = ROOT / f"checkpoint-{len(data.vocab.items)}"
    if not (folder / "lsrec.json").is_file():
        tok = data.tokenizer
        model = build_model("medium", len(data.vocab), seed=0, pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)
        save_model(model, data, folder, {"name": folder.name, "architecture": "llama", "preset": "medium",
                                         "tasks": ["RECOMMEND"], "prompt_layout": tok.layout,
                                         "untrained": True})
    return folder


def serving(data, checkpoint: Path, requests: int, concurrency: int, k: int = 100) -> dict:
    from lsrec.serve.client import LSRecClient
    from lsrec.serve.server import LSRecServer, ServeConfig
    from lsrec.tokenizer.dataset import split_cases

    cases = split_cases(data, "test")[:requests]
    histories = [case.history for case in cases]
    started = time.perf_counter()
    with LSRecServer(ServeConfig(str(checkpoint), port=free_port(), max_k=k,
                                 log_file=str(ROOT / f"serve-{checkpoint.name}.log"))) as server:
        startup = time.perf_counter() - started
        client = LSRecClient(server.url, checkpoint=str(checkpoint), concurrency=concurrency)
        answers = client.rank(histories[:concurrency], k)  # warm-up, and the masking check
        for history, answer in zip(histories, answers):
            assert len(answer) == k and not set(history) & {item for item, _ in answer}, "history not masked"
        latencies = []
        for history in histories[:20]:
            t = time.perf_counter()
            client.rank([history], k)
            latencies.append(time.perf_counter() - t)
        t = time.perf_counter()
        client.rank(histories, k)
        seconds = time.perf_counter() - t
    return {"startup_s": startup, "k": k, "concurrency": concurrency, "requests": len(histories),
            "requests_per_s": len(histories) / seconds, "p50_c1_ms": 1000 * statistics.median(latencies),
            "masking_checked_requests": concurrency,
            "mean_prompt_tokens": statistics.mean(min(len(h), 200) + 5 for h in histories)}


def flop_model(config, prompt_tokens: float) -> dict:
    """Model FLOPs (2 per multiply-add): the layers per token, the output layer per scored position
    (training scores every position, x3 for the backward), and one served request (a forward of the
    prompt and the logits of its last position)."""
    from lsrec.bench.references import flops_per_request, layer_flops_per_token

    layers, output = layer_flops_per_token(config), 2 * config.hidden_size * config.vocab_size
    return {"layers_per_token": layers, "output_layer_per_position": output,
            "output_share_training": output / (layers + output),
            "serving_request": flops_per_request(config, round(prompt_tokens))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1682,10700,100000,1000000")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per size")
    parser.add_argument("--requests", type=int, default=256, help="served requests per size")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", default="docs/bench/catalogue")
    parser.add_argument("--no-serve", action="store_true")
    args = parser.parse_args()
    from lsrec.models.llama import llama_config

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ROOT.mkdir(parents=True, exist_ok=True)
    rows = []
    for items in (int(s) for s in args.sizes.split(",")):
        print(f"{items:,} items", flush=True)
        data = prepared(items)
        row = {"items": items, "counts": data.manifest["counts"], "training": training(data, args.steps)}
        if not args.no_serve:
            row["serving"] = serving(data, untrained_checkpoint(data), args.requests, args.concurrency)
        prompt = row.get("serving", {}).get("mean_prompt_tokens", 105.0)
        row["flops"] = flop_model(llama_config("medium", row["training"]["vocabulary"]), prompt)
        (out / f"medium-{items}.json").write_text(json.dumps(row, indent=1))
        rows.append(row)
        print(table(rows), flush=True)


def table(rows: list[dict]) -> str:
    lines = ["| items | s/step | tokens/s | peak memory (MB) | loss | served req/s (c=16) | p50 c=1 (ms) | "
             "output layer share of training FLOPs | serving GFLOP/request |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        t, s, f = row["training"], row.get("serving"), row["flops"]
        lines.append(f"| {row['items']:,} | {t['seconds_per_step']:.2f} | {t['tokens_per_s']:,.0f} | "
                     f"{t['peak_memory_mb']['resident']:,.0f} | {'chunked' if t['chunked_loss'] else 'labelled rows'} | "
                     + (f"{s['requests_per_s']:.1f} | {s['p50_c1_ms']:.0f} | " if s else "— | — | ")
                     + f"{f['output_share_training']:.0%} | {f['serving_request'] / 1e9:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
