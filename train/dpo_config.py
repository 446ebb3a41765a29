"""DPOStageConfig: the single source of truth for a DPO post-training run (`lsrec dpo`). Like
TrainConfig, the CLI flags map onto its fields and `__post_init__` names the field to change."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from lsrec.tokenizer.checkpoint import CHECKPOINTS
from lsrec.tokenizer.errors import LSRecError, require_at_least_one

from .preferences import NEGATIVES

# TRL 1.16 DPOConfig loss types for a pair of single-token answers (the unpaired and length-normalised
# variants are left out: our answers have one token each).
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "robust", "exo_pair", "nca_pair", "bco_pair", "sppo_hard", "apo_zero",
              "apo_down", "discopop")


@dataclass
class DPOStageConfig:
    checkpoint: str = field(default=f"{CHECKPOINTS}/lsrec-medium-mt", metadata={"help": "the SFT checkpoint to post-train"})
    data: str | None = field(default=None, metadata={"help": "prepared dataset (default: the one the checkpoint records)"})
    name: str | None = field(default=None, metadata={"help": "checkpoint name; default <SFT name>-dpo"})
    output_dir: str = field(default=CHECKPOINTS, metadata={"help": "the final model goes to <output_dir>/<name>"})
    runs_dir: str = field(default="runs", metadata={"help": "per-round preferences, models and trainer state go "
                                                    "to <runs_dir>/<name>"})
    rounds: int = field(default=2, metadata={"help": "self-play rounds: each builds preferences with the current "
                                             "model, then trains DPO against it as the reference"})
    negatives: str = field(default="self-play", metadata={"help": "rejected answers: self-play (the model's wrong "
                                                          "top-1), popularity (sampled by training popularity) or both"})
    num_negatives: int = field(default=1, metadata={"help": "popularity-sampled rejected answers per prompt"})
    beta: float = field(default=0.1, metadata={"help": "DPO beta: how far the model may move from the reference"})
    loss_type: str = field(default="sigmoid", metadata={"help": "TRL DPO loss: " + ", ".join(LOSS_TYPES)})
    sft_weight: float = field(default=0.0, metadata={"help": "weight of an added NLL loss on the chosen answer "
                                                     "(TRL loss 'sft'; 0: pure DPO)"})
    learning_rate: float = field(default=1e-4, metadata={"help": "AdamW peak learning rate (linear decay per round)"})
    epochs: int = field(default=1, metadata={"help": "passes over each round's preference pairs"})
    batch_size: int = field(default=64, metadata={"help": "preference pairs per optimizer step"})
    seed: int = field(default=42, metadata={"help": "seed for data order and popularity sampling"})
    eval_batch_size: int = field(default=256, metadata={"help": "users per batch when ranking"})
    resume: bool = field(default=True, metadata={"help": "continue an interrupted run from its last completed round "
                                                 "(and trainer checkpoint)"})

    def __post_init__(self):
        require_at_least_one(self, "rounds", "num_negatives", "epochs", "batch_size", "eval_batch_size")
        if self.negatives not in NEGATIVES:
            raise LSRecError(f"negatives: unknown {self.negatives!r}; choose one of {', '.join(NEGATIVES)}")
        if self.loss_type not in LOSS_TYPES:
            raise LSRecError(f"loss_type: unknown {self.loss_type!r}; choose one of {', '.join(LOSS_TYPES)}")
        if self.beta <= 0:
            raise LSRecError(f"beta must be above 0 (got {self.beta})")
        if self.sft_weight < 0:
            raise LSRecError(f"sft_weight must be 0 or more (got {self.sft_weight})")
        if not 0 < self.learning_rate < 1:
            raise LSRecError(f"learning_rate must be in (0, 1) (got {self.learning_rate})")
        if self.name is None:
            self.name = f"{Path(self.checkpoint).name}-dpo"

    def to_dict(self) -> dict:
        return asdict(self)
