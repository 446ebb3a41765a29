"""`lsrec train-speed`: how fast a training configuration runs here. It times the steps of the run's
own TRL Trainer loop (loading and collating batches, loss, backward, clipping, AdamW) and reports training tokens/s,
the model FLOPs per token, and the share of this machine's matmul rate measured in the same run."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace

from lsrec.tokenizer.errors import LSRecError

from .config import TrainConfig
from .tasks import IGNORE


def training_flops(config, batch) -> dict:
    """Model FLOPs of one training step on `batch` (forward and backward, 2 per multiply-add, backward
    twice the forward): every projection and MLP on each real token, causal attention within each
    packed sequence, and the output layer on the labelled positions only (as the loss computes it).
    Padding is not counted: it is work a better layout avoids."""
    import torch

    from lsrec.bench.references import attention_width, layer_flops_per_token

    q = attention_width(config)
    segments = batch["segments"]
    real = int((segments >= 0).sum())
    lengths = torch.cat([torch.bincount(row[row >= 0]) for row in segments]).double()
    causal_pairs = float((lengths * (lengths + 1) / 2).sum())
    labelled = int((batch["labels"][:, 1:] != IGNORE).sum())
    forward = (real * layer_flops_per_token(config) + config.num_hidden_layers * 2 * 2 * q * causal_pairs
               + labelled * 2 * config.hidden_size * config.vocab_size)
    return {"flops": 3 * forward, "tokens": real, "padded_tokens": segments.numel(), "labels": labelled}


def measure_training_speed(cfg: TrainConfig, steps: int = 0, log=print) -> dict:
    """Time `steps` optimizer steps (0: the rest of one epoch) of the run's own Trainer loop after one
    warm-up step: wall time from the end of the warm-up step to the end of the last, so loading and
    collating batches count too. Then each timed batch's tokens and FLOPs. The matmul rates are read
    just before and just after the training and averaged: on a shared machine one reading can be a
    third off the rate the steps ran at."""
    import torch
    from transformers import TrainerCallback

    from lsrec.bench.references import machine, matmul_flops_per_s

    from .trainer import build_trainer

    step_ends: list[float] = []
    batches: list[dict] = []  # the timed batches' layout, counted after the clock stops
    with tempfile.TemporaryDirectory() as runs:
        trainer, _, _ = build_trainer(replace(cfg, runs_dir=runs, resume=False, max_epochs=1), log)
        threads, c = torch.get_num_threads(), trainer.model.config
        shapes = {"square_2048": (2048, 2048, 2048), "layer_shape": (8192, c.hidden_size, c.intermediate_size)}
        before = {name: matmul_flops_per_s(threads, shape=shape) for name, shape in shapes.items()}
        per_epoch = len(trainer.get_train_dataloader())
        timed = per_epoch - 1 if steps <= 0 else min(steps, per_epoch - 1)
        if timed < 1:
            raise LSRecError(f"{cfg.data}: one batch per epoch; lower --batch-size to time at least two steps")
        trainer.args.max_steps, trainer.args.save_strategy = timed + 1, "no"
        compute_loss = trainer.compute_loss

        def keeping_layout(model, inputs, *args, **kwargs):
            if step_ends:  # past the warm-up step
                batches.append({"segments": inputs["segments"], "labels": inputs["labels"]})
            return compute_loss(model, inputs, *args, **kwargs)

        class StepClock(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                step_ends.append(time.perf_counter())
                done = len(step_ends) - 1
                if done and (done % 5 == 0 or done == timed):
                    log(f"step {done}/{timed}: {step_ends[-1] - step_ends[0]:.1f} s")

        trainer.compute_loss = keeping_layout
        trainer.add_callback(StepClock())
        trainer.train()
    after = {name: matmul_flops_per_s(threads, shape=shape) for name, shape in shapes.items()}
    peak = peak_memory()
    seconds = step_ends[-1] - step_ends[0]
    counted = {"flops": 0.0, "tokens": 0, "padded_tokens": 0, "labels": 0}
    for batch in batches:
        for key, value in training_flops(c, batch).items():
            counted[key] += value
    rates = {name: (before[name] + after[name]) / 2 for name in shapes}
    achieved = counted["flops"] / seconds
    return {
        "machine": machine(), "threads": threads,
        "config": cfg.to_dict(), "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "vocabulary": c.vocab_size, "chunked_loss": trainer.chunked_loss, "peak_memory_mb": peak,
        "steps": len(batches), "seconds": seconds, "seconds_per_step": seconds / len(batches), **counted,
        "tokens_per_s": counted["tokens"] / seconds,
        "padding_share": 1 - counted["tokens"] / counted["padded_tokens"],
        "flops_per_token": counted["flops"] / counted["tokens"],
        "achieved_flops_per_s": achieved,
        "matmul_flops_per_s": rates,
        "matmul_readings": {name: [before[name], after[name]] for name in shapes},  # before, after the steps
        "share_of_matmul_rate": {name: achieved / rate for name, rate in rates.items()},
    }


def peak_memory() -> dict:
    """Peak memory of this process so far, in MB: resident (CPU) and, on a GPU, allocated by torch."""
    import resource

    import torch

    peak = {"resident": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux reports KB
    if torch.cuda.is_available():
        peak["gpu_allocated"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def describe(result: dict) -> list[str]:
    rates, shares = result["matmul_flops_per_s"], result["share_of_matmul_rate"]
    before, after = result["matmul_readings"]["square_2048"]
    cpu = result["machine"]
    flags = ", ".join(cpu["cpu_flags"]) or "no vector flags read"
    return [
        f"{cpu['cpu_model'] or cpu['processor']} ({flags}), {cpu['cpus']} logical "
        f"CPUs, {result['threads']} torch threads; {result['steps']} steps in {result['seconds']:.1f} s "
        f"({result['seconds_per_step']:.2f} s/step)",
        f"vocabulary {result['vocabulary']:,} tokens, {'chunked' if result['chunked_loss'] else 'labelled-rows'} loss; "
        f"peak memory {', '.join(f'{k} {v:,.0f} MB' for k, v in result['peak_memory_mb'].items())}",
        f"training tokens/s {result['tokens_per_s']:,.0f} (padding {result['padding_share']:.1%} of the rows' tokens)",
        f"model FLOPs per token {result['flops_per_token'] / 1e6:.2f} M; achieved {result['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s",
        f"float32 matmul rate {rates['square_2048'] / 1e9:.1f} GFLOP/s (2048 squares; {before / 1e9:.1f} before the steps, {after / 1e9:.1f} after), "
        f"{rates['layer_shape'] / 1e9:.1f} (the MLP's shape): share {shares['square_2048']:.1%} and "
        f"{shares['layer_shape']:.1%}",
    ]
