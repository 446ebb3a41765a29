"""`lsrec train`, `lsrec dpo` and `lsrec baseline sasrec|bigrec`: every command that writes a model.
Each prints the checkpoint folder on its last line (what `lsrec eval` and `lsrec serve` take)."""

from __future__ import annotations

from typing import Optional

import typer

from .options import given, register
from .report import console, metrics_table

baseline_app = typer.Typer(help="Train baselines on the same split and metrics as LSRec.", no_args_is_help=True)


def _done(folder) -> None:
    print(folder)  # plain, last, so scripts can take it: CKPT=$(lsrec train ... | tail -1)


def train_command(recipe: Optional[str] = None,  # its option is made in add_commands, from RECIPES
                  **options):
    """Train LSRec with TRL's SFTTrainer; keep the checkpoint with the best validation NDCG@10."""
    from lsrec.tokenizer.errors import LSRecError
    from lsrec.train.config import RECIPES, TrainConfig
    from lsrec.train.trainer import process_layout, train

    if recipe not in RECIPES:
        raise LSRecError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    folder = train(TrainConfig(**{**RECIPES[recipe], **given(options)}), log=console.print)
    if process_layout()[0] == 0:  # under torchrun, one line from rank 0
        _done(folder)


def train_speed_command(recipe: Optional[str] = None,
                        steps: int = typer.Option(0, help="optimizer steps to time after one warm-up step "
                                                  "(0: one epoch)"),
                        output: Optional[str] = typer.Option(None, "--output", "-o", help="also write the "
                                                             "result to this JSON file"),
                        **options):
    """Time real training steps of a configuration (the same flags as `lsrec train`): training tokens/s,
    model FLOPs per token, and the share of this machine's matmul rate measured in the same run."""
    import json

    from lsrec.tokenizer.errors import LSRecError
    from lsrec.train.config import RECIPES, TrainConfig
    from lsrec.train.speed import describe, measure_training_speed

    if recipe not in RECIPES:
        raise LSRecError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    result = measure_training_speed(TrainConfig(**{**RECIPES[recipe], **given(options)}), steps, log=console.print)
    for line in describe(result):
        console.print(line, highlight=False)
    if output:
        with open(output, "w") as f:
            json.dump(result, f, indent=1)
        console.print(f"written: {output}")


def dpo_command(checkpoint: str = typer.Argument(..., help="the SFT checkpoint folder to post-train"), **options):
    """Post-train an SFT checkpoint with TRL's DPOTrainer in self-play rounds (SPRec); writes checkpoints/<name>."""
    from lsrec.train.dpo import dpo
    from lsrec.train.dpo_config import DPOStageConfig

    _done(dpo(DPOStageConfig(checkpoint=checkpoint, **given(options)), log=console.print))


def sasrec_command(**options):
    """Train SASRec (Kang & McAuley) on the same split, masking and metrics as LSRec; keep the best
    validation NDCG@10. --loss bce is the original (one sampled negative), --loss ce full softmax."""
    from lsrec.models.sasrec import SASRecConfig
    from lsrec.train.sasrec import train_sasrec

    _done(train_sasrec(SASRecConfig(**given(options)), log=console.print))


def bigrec_command(**options):
    """BigRec: LoRA-tune a pretrained causal LM to write the next title, ground it to items, evaluate."""
    from lsrec.bench.bigrec_ranker import evaluate_bigrec
    from lsrec.bench.offline import write_json
    from lsrec.tokenizer.checkpoint import checkpoint_folder
    from lsrec.train.bigrec import BigRecConfig, train_bigrec

    cfg = BigRecConfig(**given(options))
    folder = checkpoint_folder(cfg.output_dir, cfg.name)
    if not cfg.evaluate_only:
        folder = train_bigrec(cfg, log=console.print)
    result = evaluate_bigrec(folder, cfg.data, batch_size=cfg.eval_batch_size, log=console.print)
    console.print(metrics_table(f"{result['model']} on the test split", {result["model"]: result}))
    for path in dict.fromkeys([str(folder / "eval_test.json"), cfg.json]):
        if path:
            write_json(result, path)
            console.print(f"metrics written to {path}")
    _done(folder)


def add_commands(app: typer.Typer) -> None:
    # Config modules are light (dataclasses only, no torch), so --help stays instant.
    from lsrec.models.sasrec import SASRecConfig
    from lsrec.train.bigrec import BigRecConfig
    from lsrec.train.config import DEFAULT_RECIPE, TrainConfig, describe_recipes
    from lsrec.train.dpo_config import DPOStageConfig

    recipe = typer.Option(DEFAULT_RECIPE, help=describe_recipes())
    register(app, "train", train_command, TrainConfig, own_options={"recipe": recipe})
    register(app, "train-speed", train_speed_command, TrainConfig, own_options={"recipe": recipe})
    register(app, "dpo", dpo_command, DPOStageConfig, skip=("checkpoint",))
    register(baseline_app, "sasrec", sasrec_command, SASRecConfig)
    register(baseline_app, "bigrec", bigrec_command, BigRecConfig)
    app.add_typer(baseline_app, name="baseline")
