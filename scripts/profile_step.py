"""Where a training step's time goes: torch.profiler over a few steps of `lsrec train`'s own loss
(`build_trainer`'s compute_loss, backward, AdamW) on the run's first batches, ops by self CPU time.

    python scripts/profile_step.py [--steps 3] [--rows 25] [FIELD=VALUE ...]   # TrainConfig fields
    bash scripts/at_revision.sh REV .venv/bin/python scripts/profile_step.py [...]   # at an older revision

FIELD=VALUE sets a TrainConfig field (attention_dropout=0, batch_size=64). Runs at any revision that
has `lsrec.train.trainer.build_trainer` (5ff8b34 on), so before/after profiles use one harness."""

from __future__ import annotations

import argparse
import ast
import tempfile
import time
from dataclasses import replace


def main() -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from lsrec.train.config import TrainConfig
    from lsrec.train.trainer import build_trainer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps, after one warm-up step")
    parser.add_argument("--rows", type=int, default=25, help="ops shown")
    parser.add_argument("fields", nargs="*", help="TrainConfig FIELD=VALUE")
    args = parser.parse_args()
    overrides = {}
    for pair in args.fields:
        key, _, value = pair.partition("=")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    cfg = TrainConfig(**overrides)
    with tempfile.TemporaryDirectory() as runs:
        trainer = build_trainer(replace(cfg, runs_dir=runs, resume=False, max_epochs=1), log=lambda *a: None)[0]
        batches = iter(trainer.get_train_dataloader())
        warm_up, *profiled = [next(batches) for _ in range(1 + args.steps)]
        model = trainer.model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)

        def step(batch):
            trainer.compute_loss(model, batch).backward()
            optimizer.step()
            optimizer.zero_grad()

        step(warm_up)
        start = time.perf_counter()
        for batch in profiled:
            step(batch)
        unprofiled = time.perf_counter() - start
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for batch in profiled:
                step(batch)
    shapes = [tuple(b["input_ids"].shape) for b in profiled]
    print(f"{args.steps} steps (rows x width {shapes}) in {unprofiled:.2f} s unprofiled; "
          f"{torch.get_num_threads()} threads; {overrides or 'defaults'}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
