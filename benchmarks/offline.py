"""Offline evaluation of a checkpoint (or the popularity baseline) on its own split."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lsrec.tokenizer import dataset as prepared
from lsrec.tokenizer.checkpoint import data_for_checkpoint, load_metadata
from lsrec.tokenizer.dataset import split_cases
from lsrec.tokenizer.errors import LSRecError

from .evaluate import PopularityRanker, evaluate_protocols


def load_ranker(folder: str | Path):
    """The in-process Ranker for an LSRec (Hugging Face Llama) or SASRec checkpoint folder."""
    architecture = load_metadata(folder).architecture
    if architecture == "sasrec":
        from .sasrec_ranker import SASRecRanker

        return SASRecRanker.from_checkpoint(folder)
    if architecture == "bigrec":
        raise LSRecError(f"{folder} is a BigRec checkpoint: evaluate it with `lsrec baseline bigrec --evaluate-only`")
    from .lsrec_ranker import LSRecRanker

    return LSRecRanker.from_checkpoint(folder)


def evaluate_checkpoint(folder: str | Path, data_dir: str | None = None, split: str = "test",
                        sample_size: int = 1000, seed: int = 0, served: str | None = None,
                        aux_tasks: bool = True) -> dict:
    """Offline (in-process) or, with served=URL, through a running server: same cases, rule and metrics.
    In-process, an LSRec model trained on auxiliary tasks is also measured on them (`aux_tasks`)."""
    data = data_for_checkpoint(folder, data_dir)
    if served:
        from lsrec.serve.client import LSRecClient

        architecture = load_metadata(folder).architecture
        if architecture != "llama":
            raise LSRecError(f"{folder} is a {architecture} checkpoint: vLLM serves LSRec (Llama) checkpoints only")
        ranker = LSRecClient(served, str(folder))
        parameters = None
    else:
        ranker = load_ranker(folder)
        parameters = sum(p.numel() for p in ranker.model.parameters())
    started = time.time()
    results = evaluate_protocols(ranker, data, split, sample_size, seed)
    meta = ranker.meta.raw
    asked = [t for t in meta.get("tasks") or [] if t != "RECOMMEND"]
    if aux_tasks and asked and not served and meta.get("architecture", "llama") == "llama":
        from .aux_tasks import aux_task_metrics

        results["aux_tasks"] = aux_task_metrics(ranker, data, asked, split)
    history = meta.get("history", [])
    training = {
        "preset": meta.get("preset"),
        "tasks": meta.get("tasks"),
        "parameters": parameters,
        "best_epoch": meta.get("best_epoch"),
        "epochs_run": history[-1]["epoch"] if history else None,
        "train_seconds": history[-1]["seconds"] if history else None,
        "valid_ndcg10_by_epoch": [[h["epoch"], h["valid"]["NDCG@10"]] for h in history],
        "config": meta.get("train_config"),
    }
    if meta.get("stage") == "dpo":  # post-trained: where it came from and how (lsrec dpo)
        dpo = meta["dpo"]
        training["dpo"] = {"sft_checkpoint": dpo["sft_checkpoint"], "rounds": len(dpo["rounds"]), "config": dpo["config"]}
    return {"model": meta.get("name", Path(folder).name), "checkpoint": str(folder), "split": split,
            "ranked_by": f"server {served}" if served else "in-process",
            "split_sha256": data.split_hash, "eval_seconds": round(time.time() - started, 2),
            "training": training, **results}


def evaluate_popularity(data_dir: str, split: str = "test", sample_size: int = 1000, seed: int = 0) -> dict:
    data = prepared.load(data_dir)
    ranker = PopularityRanker([c.history for c in split_cases(data, split)])
    results = evaluate_protocols(ranker, data, split, sample_size, seed)
    return {"model": "popularity", "split": split, "split_sha256": data.split_hash, **results}


def write_json(result: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1))


def served_parity(folder: str | Path, url: str, data_dir: str | None = None, split: str = "test", k: int = 10) -> dict:
    """Rank every user of the split in-process and through the server: how many top-k lists agree
    exactly (same items, same order), the largest score difference, and the metric differences."""
    from lsrec.serve.client import LSRecClient

    from .evaluate import MAX_K, score
    from .lsrec_ranker import LSRecRanker

    data = data_for_checkpoint(folder, data_dir)
    cases = split_cases(data, split)
    histories = [c.history for c in cases]
    offline = LSRecRanker.from_checkpoint(folder).rank(histories, MAX_K)
    served = LSRecClient(url, str(folder)).rank(histories, MAX_K)
    same = sum([i for i, _ in a[:k]] == [i for i, _ in b[:k]] for a, b in zip(offline, served))
    score_gap = max(abs(sa - sb) for a, b in zip(offline, served) for (_, sa), (_, sb) in zip(a[:k], b[:k]))
    n_items = len(data.vocab.items)
    metrics = {name: score([[item for item, _ in top] for top in tops], cases, n_items)
               for name, tops in (("offline", offline), ("served", served))}
    gaps = {m: abs(metrics["offline"][m] - metrics["served"][m]) for m in metrics["offline"] if m != "users"}
    return {"checkpoint": str(folder), "url": url, "split": split, "users": len(cases),
            f"identical_top{k}": same, f"max_abs_logprob_diff_top{k}": score_gap,
            "max_abs_metric_diff": max(gaps.values()), "metrics": metrics}

