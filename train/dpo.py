"""DPO post-training of an SFT checkpoint with TRL's DPOTrainer, in SPRec-style self-play rounds.

Each round: build preference pairs from the training split with the current model (train/preferences.py),
then train DPO with that model, frozen, as the reference (round 1: the SFT checkpoint). Every round
ends in a complete checkpoint folder under runs/<name>/round-<r>/checkpoint (evaluable like any other);
the last one is copied to checkpoints/<name>. A round is done once its entry is in runs/<name>/rounds.json,
so a killed run restarts at its first unfinished round, from that round's last trainer checkpoint.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

from lsrec.tokenizer.checkpoint import (METADATA_FILE, checkpoint_folder, data_for_checkpoint, load_metadata,
                                       update_metadata, write_checkpoint)
from lsrec.tokenizer.dataset import split_cases
from lsrec.tokenizer.errors import LSRecError

from .dpo_config import DPOStageConfig
from .preferences import build_preferences, read_preferences, to_text, write_preferences
from .runtime import prepare_process

ROUNDS_FILE = "rounds.json"
CONFIG_FILE = "dpo_config.json"
# Fields that may change between a run and its resumption without changing what the rounds compute.
RESUMABLE = {"rounds", "resume", "eval_batch_size"}


def preference_dataset(tok, rows: list[dict]):
    """TRL 1.16's DPOTrainer tokenizes text datasets itself (it has no path for pre-tokenized ids), so
    each pair goes in as token strings that our tokenizer reads back into exactly the SFT ids
    (tests/test_dpo.py checks the ids the trainer sees). The answer carries its [EOS], as in SFT."""
    from datasets import Dataset

    return Dataset.from_dict({
        "prompt": [to_text(tok, r["prompt_ids"]) for r in rows],
        "chosen": [" " + to_text(tok, r["chosen_ids"]) for r in rows],
        "rejected": [" " + to_text(tok, r["rejected_ids"]) for r in rows],
    })


def answer_only_collator(pad_id: int, eos_id: int):
    """TRL's preference collator, with the answer's [EOS] kept in the sequence but given no weight: the
    SFT examples carry no label on that [EOS] either (train/tasks.py), and scoring it would let DPO
    widen its margins through EOS probabilities, which no ranking reads."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    class AnswerOnlyCollator(DataCollatorForPreference):
        def torch_call(self, examples):
            out = super().torch_call(examples)
            out["completion_mask"] = out["completion_mask"] * (out["input_ids"] != eos_id)
            return out

    return AnswerOnlyCollator(pad_token_id=pad_id)


def load_model(folder: Path):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    # No dropout in DPO (TRL's disable_dropout only reaches nn.Dropout modules, not Llama's attention
    # dropout): the policy's log-ratios against the reference must start at 0. The config keeps its
    # value, so the saved model is configured like the SFT one.
    for layer in model.model.layers:
        layer.self_attn.attention_dropout = 0.0
    return model


def make_trainer(cfg: DPOStageConfig, model, ref_model, hf_tok, dataset, out_dir: Path, seed: int, collator=None):
    import torch
    from trl import DPOConfig, DPOTrainer

    steps = -(-len(dataset) // cfg.batch_size) * cfg.epochs
    args = DPOConfig(
        output_dir=str(out_dir),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",
        beta=cfg.beta,
        loss_type=[cfg.loss_type, "sft"] if cfg.sft_weight else [cfg.loss_type],
        loss_weights=[1.0, cfg.sft_weight] if cfg.sft_weight else None,
        max_length=None,  # prompts are already fitted to the 200-token context
        gradient_checkpointing=False,  # TRL's default; the recompute costs time and saves nothing here
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
        data_seed=seed,
        save_strategy="steps",
        save_steps=max(1, steps // 4),  # a killed round loses at most a quarter of its steps
        save_total_limit=1,
        logging_steps=max(1, steps // 4),
        report_to="none",
        disable_tqdm=False,
        dataloader_num_workers=0,
    )
    return DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=dataset, processing_class=hf_tok,
                      data_collator=collator)


def dpo(cfg: DPOStageConfig, log=print) -> Path:
    """Run the rounds and return the folder of the final checkpoint."""
    import warnings

    import torch
    from transformers import PreTrainedTokenizerFast
    from transformers.utils import logging

    from lsrec.bench.evaluate import evaluate
    from lsrec.bench.lsrec_ranker import LSRecRanker

    from .trainer import _last_trainer_checkpoint, save_model

    prepare_process()
    logging.disable_progress_bar()  # weight-loading bars; the trainer's own bar stays
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")  # renames, at every save
    sft_dir = Path(cfg.checkpoint)
    sft = load_metadata(sft_dir).raw
    if sft.get("stage") == "dpo":
        raise LSRecError(f"{sft_dir} is already a DPO checkpoint; give the SFT checkpoint it came from")
    data = data_for_checkpoint(sft_dir, cfg.data)
    tok = load_metadata(sft_dir).tokenizer  # in the SFT model's prompt layout
    hf_tok = PreTrainedTokenizerFast.from_pretrained(str(sft_dir))
    valid_cases = split_cases(data, "valid")
    n_items = len(data.vocab.items)
    run_dir = Path(cfg.runs_dir) / cfg.name
    rounds = _start_run(cfg, run_dir)
    final_dir = checkpoint_folder(cfg.output_dir, cfg.name)
    log(f"{cfg.name}: DPO on {sft_dir} ({sft.get('name')}), {cfg.rounds} round(s), beta {cfg.beta}, "
        f"{cfg.loss_type} loss, {cfg.negatives} negatives")

    current = sft_dir if not rounds else run_dir / f"round-{len(rounds)}" / "checkpoint"
    for r in range(len(rounds) + 1, cfg.rounds + 1):
        started = time.time()
        round_dir = run_dir / f"round-{r}"
        round_dir.mkdir(parents=True, exist_ok=True)
        seed = cfg.seed + r - 1
        model = load_model(current)
        prefs_path = round_dir / "preferences.jsonl"
        if prefs_path.is_file():  # written atomically: a resumed round trains on the same pairs
            rows, sha = read_preferences(prefs_path)
        else:
            ranker = LSRecRanker(model, tok, batch_size=cfg.eval_batch_size)
            rows = build_preferences(data, ranker, cfg.negatives, cfg.num_negatives, seed, tok)
            sha = write_preferences(rows, prefs_path)
        kinds = Counter(row["kind"] for row in rows)
        log(f"round {r}: {len(rows)} preference pairs ({', '.join(f'{n} {k}' for k, n in kinds.items())}) "
            f"from {len(data.sequences)} users")
        if not rows:
            raise LSRecError(f"round {r}: no preference pairs (the model's top-1 is right for every user)")
        trainer = make_trainer(cfg, model, load_model(current).eval(), hf_tok, preference_dataset(tok, rows),
                               round_dir / "trainer", seed, answer_only_collator(tok.pad_id, tok.eos_id))
        resume_from = _last_trainer_checkpoint(round_dir / "trainer")
        if resume_from:
            log(f"round {r}: resuming from {resume_from}")
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]

        folder = round_dir / "checkpoint"
        entry = {"round": r, "reference": str(current), "seed": seed,
                 "preferences": {"file": str(prefs_path), "sha256": sha, "pairs": len(rows), "by_kind": dict(kinds),
                                 "users": len({row["user"] for row in rows})},
                 "train_loss": losses[-1] if losses else None}
        save_model(trainer.model, data, folder, {})
        # Validation metrics from the saved folder, loaded as `lsrec eval` loads it.
        valid = evaluate(LSRecRanker.from_checkpoint(folder, batch_size=cfg.eval_batch_size), valid_cases, n_items)
        entry |= {"valid": valid, "seconds": round(time.time() - started, 1)}
        rounds.append(entry)
        _copy_preferences(folder, rounds, run_dir)
        update_metadata(folder, **_dpo_metadata(sft, cfg, f"{cfg.name}-round{r}", rounds))
        (run_dir / ROUNDS_FILE).write_text(json.dumps(rounds, indent=1))  # the round is done
        log(f"round {r}: valid NDCG@10 {valid['NDCG@10']:.4f} Div@10 {valid['Div@10']:.4f} "
            f"PopPct@10 {valid['PopPct@10']:.3f} (SFT: NDCG@10 {sft['valid']['NDCG@10']:.4f} "
            f"Div@10 {sft['valid'].get('Div@10', float('nan')):.4f}) in {entry['seconds']:.0f} s")
        current = folder

    last = run_dir / f"round-{cfg.rounds}" / "checkpoint"

    def copy_last_round(tmp: Path) -> None:
        shutil.copytree(last, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(METADATA_FILE))

    write_checkpoint(final_dir, data, _dpo_metadata(sft, cfg, cfg.name, rounds[: cfg.rounds]), copy_last_round)
    log(f"saved to {final_dir}")
    return final_dir


def _start_run(cfg: DPOStageConfig, run_dir: Path) -> list[dict]:
    """The completed rounds of an earlier run with the same settings (none when starting over)."""
    if not cfg.resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path, rounds_path = run_dir / CONFIG_FILE, run_dir / ROUNDS_FILE
    if config_path.is_file():
        before = json.loads(config_path.read_text())
        changed = sorted(k for k, v in cfg.to_dict().items() if k not in RESUMABLE and before.get(k) != v)
        if changed:
            raise LSRecError(f"{run_dir} was started with other settings ({', '.join(changed)}); "
                             "give another --name, or --no-resume to start over")
    config_path.write_text(json.dumps(cfg.to_dict(), indent=1))
    rounds = json.loads(rounds_path.read_text()) if rounds_path.is_file() else []
    return rounds[: cfg.rounds]


def _copy_preferences(folder: Path, rounds: list[dict], run_dir: Path) -> None:
    """Each round's preference pairs, copied into the checkpoint folder (preferences/round-<r>.jsonl)."""
    prefs = folder / "preferences"
    prefs.mkdir(exist_ok=True)
    for entry in rounds:
        shutil.copy(run_dir / f"round-{entry['round']}" / "preferences.jsonl", prefs / f"round-{entry['round']}.jsonl")


def _dpo_metadata(sft: dict, cfg: DPOStageConfig, name: str, rounds: list[dict]) -> dict:
    """lsrec.json of a DPO checkpoint: the SFT checkpoint's metadata (vocabulary, catalogue, split, how it
    was trained), plus what DPO did to it."""
    return {
        **{k: v for k, v in sft.items() if k != "format"},
        "name": name,
        "stage": "dpo",
        "valid": rounds[-1]["valid"],
        "dpo": {
            "sft_checkpoint": cfg.checkpoint,
            "sft_name": sft.get("name"),
            "sft_valid": sft.get("valid"),
            "config": cfg.to_dict(),
            "rounds": [{**e, "preferences": {**e["preferences"], "copy": f"preferences/round-{e['round']}.jsonl"}}
                       for e in rounds],
        },
    }
