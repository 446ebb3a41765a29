"""Offline evaluation of a checkpoint (or the popularity baseline) on its own split."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lsrec.tokenizer import dataset as prepared
from lsrec.tokenizer.checkpoint import load_metadata
from lsrec.tokenizer.errors import LSRecError

from .evaluate import PopularityRanker, evaluate_protocols, split_cases


def data_for_checkpoint(folder: str | Path, data_dir: str | None = None) -> prepared.PreparedData:
    """The prepared split a checkpoint was trained on; refuses a different split (hash check)."""
    meta = load_metadata(folder)
    split = meta.raw["split"]
    data = prepared.load(data_dir or split["data"])
    if data.split_hash != split["sha256"]:
        raise LSRecError(f"{data.folder} is not the split {folder} was trained on "
                         f"(sha256 {data.split_hash[:12]} != {split['sha256'][:12]})")
    return data


def evaluate_checkpoint(folder: str | Path, data_dir: str | None = None, split: str = "test",
                        sample_size: int = 1000, seed: int = 0) -> dict:
    from .lsrec_ranker import LSRecRanker

    data = data_for_checkpoint(folder, data_dir)
    ranker = LSRecRanker.from_checkpoint(folder)
    started = time.time()
    results = evaluate_protocols(ranker, data, split, sample_size, seed)
    meta = ranker.meta.raw
    history = meta.get("history", [])
    training = {
        "preset": meta.get("preset"),
        "tasks": meta.get("tasks"),
        "parameters": sum(p.numel() for p in ranker.model.parameters()),
        "best_epoch": meta.get("best_epoch"),
        "epochs_run": history[-1]["epoch"] if history else None,
        "train_seconds": history[-1]["seconds"] if history else None,
        "valid_ndcg10_by_epoch": [[h["epoch"], h["valid"]["NDCG@10"]] for h in history],
        "config": meta.get("train_config"),
    }
    return {"model": meta.get("name", Path(folder).name), "checkpoint": str(folder), "split": split,
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
