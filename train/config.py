"""TrainConfig: the single source of truth for a training run. The CLI flags map onto its fields,
and `__post_init__` names the field to change when a value is wrong."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lsrec.tokenizer.checkpoint import CHECKPOINTS
from lsrec.tokenizer.errors import LSRecError, require_at_least_one
from lsrec.tokenizer.vocab import DEFAULT_LAYOUT, PROMPT_LAYOUTS, ItemTokenizer

from lsrec.models.llama import INITS, PRESETS

# `--chunked-loss auto` turns it on from this vocabulary size, where a batch of 128 x 200 labelled
# positions holds 6.7 GB of float32 logits and as much again for their gradient. Below it the plain
# loss is the faster one.
CHUNKED_LOSS_FROM = 65_536


@dataclass
class TrainConfig:
    """The defaults are the `copies` recipe, what `lsrec train` runs when given nothing: SASRec's
    optimisation on the LSRec model (Xavier init, AdamW 0.001 with beta2 0.98, no weight decay, 128
    sequences per step) with 32 [START] copies and a cosine decay over at most 40 epochs, patience 15
    (docs/RESULTS.md, "The recipe in `lsrec train`"), and no attention dropout (docs/RESULTS.md,
    "Attention dropout off by default")."""

    data: str = field(default="data/ml-100k", metadata={"help": "prepared dataset folder (lsrec data prepare)"})
    preset: str = field(default="medium", metadata={"help": "model size: small, medium or large (paper Table 1)"})
    multitask: bool = field(default=True, metadata={"help": "train on all five tasks of paper Table 2 (-mt)"})
    name: str | None = field(default=None, metadata={"help": "checkpoint name; default lsrec-<preset>[-mt]"})
    output_dir: str = field(default=CHECKPOINTS, metadata={"help": "best checkpoint goes to <output_dir>/<name>"})
    runs_dir: str = field(default="runs", metadata={"help": "trainer state for resuming goes to <runs_dir>/<name>"})
    prompt_layout: str = field(default=DEFAULT_LAYOUT, metadata={"help": "where the task goes in a prompt: "
                                                     "history-first (paper Table 2: the history, then the task) "
                                                     "or task-first (the task, then the history)"})
    all_positions: bool = field(default=True, metadata={"help": "also learn every next item of the history (SASRec-style)"})
    aux_history: int = field(default=0, metadata={"help": "most recent items in the auxiliary tasks' prompts "
                                                 "(0: the whole history, as the paper)"})
    task_sampling: bool = field(default=True, metadata={"help": "per epoch and user, one auxiliary task drawn at "
                                                        "random (off: all four every epoch, as the paper)"})
    start_copies: int = field(default=32, metadata={"help": "a [START] for each of the last N cuts of the history "
                                                   "in every RECOMMEND example, each seeing only the items before "
                                                   "it, so the [START] position that ranks learns N next items "
                                                   "per user and epoch (0: off; 200: every cut)"})
    aux_weight: float = field(default=1.0, metadata={"help": "loss weight of an auxiliary-task label relative "
                                                    "to a RECOMMEND label"})
    max_epochs: int = field(default=40, metadata={"help": "upper bound on epochs (paper: 100)"})
    patience: int = field(default=15, metadata={"help": "stop after this many epochs without a better validation NDCG@10 (paper: 20)"})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW peak learning rate"})
    lr_scheduler: str = field(default="cosine", metadata={"help": "learning-rate schedule over max_epochs (transformers name)"})
    warmup_ratio: float = field(default=0.0, metadata={"help": "fraction of steps spent warming up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW beta2 (SASRec: 0.98)"})
    init: str = field(default="xavier", metadata={"help": "weight initialisation: normal (transformers' "
                                                 "N(0, 0.02)) or xavier (Xavier-normal matrices, as SASRec)"})
    batch_size: int = field(default=128, metadata={"help": "sequences per optimizer step"})
    pack: bool = field(default=True, metadata={"help": "pack a batch's short sequences side by side into rows "
                                               "as wide as its longest (the same loss on less padding)"})
    chunked_loss: str = field(default="auto", metadata={"help": "score the output layer in vocabulary tiles "
                                                 "through TRL's fused LM head, never holding a positions x "
                                                 "vocabulary logits matrix: on, off, or auto (on from "
                                                 f"{CHUNKED_LOSS_FROM:,} tokens, where that matrix reaches gigabytes)"})
    attention_dropout: float = field(default=0.0, metadata={"help": "attention dropout (paper Table 1: 0.2). Off by "
                                                           "default: SDPA then runs its fused kernel, 1.3x per "
                                                           "step, at the same test NDCG@10 over 3 seeds"})
    hidden_dropout: float = field(default=0.2, metadata={"help": "training-only dropout on embeddings and "
                                                        "attention/MLP outputs (the saved model is plain Llama)"})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 autocast (only where measured faster and safe)"})
    seed: int = field(default=42, metadata={"help": "seed for weights, data order and dropout"})
    eval_batch_size: int = field(default=256, metadata={"help": "users per batch when validating"})
    resume: bool = field(default=True, metadata={"help": "continue from the last epoch of an interrupted run"})

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise LSRecError(f"preset: unknown {self.preset!r}; choose one of {', '.join(PRESETS)}")
        require_at_least_one(self, "max_epochs", "patience", "batch_size", "eval_batch_size")
        if self.aux_history < 0:
            raise LSRecError(f"aux_history must be 0 (whole history) or more (got {self.aux_history})")
        if not 0 < self.learning_rate < 1:
            raise LSRecError(f"learning_rate must be in (0, 1) (got {self.learning_rate})")
        if self.aux_weight < 0:
            raise LSRecError(f"aux_weight must be 0 or more (got {self.aux_weight})")
        if self.start_copies < 0:
            raise LSRecError(f"start_copies must be 0 (off) or more (got {self.start_copies})")
        if not 0 <= self.hidden_dropout < 1:
            raise LSRecError(f"hidden_dropout must be in [0, 1) (got {self.hidden_dropout})")
        if not 0 <= self.attention_dropout < 1:
            raise LSRecError(f"attention_dropout must be in [0, 1) (got {self.attention_dropout})")
        if self.init not in INITS:
            raise LSRecError(f"init: unknown {self.init!r}; choose one of {', '.join(INITS)}")
        if not 0 < self.adam_beta2 < 1:
            raise LSRecError(f"adam_beta2 must be in (0, 1) (got {self.adam_beta2})")
        if self.prompt_layout not in PROMPT_LAYOUTS:
            raise LSRecError(f"prompt_layout: unknown {self.prompt_layout!r}; choose one of {', '.join(PROMPT_LAYOUTS)}")
        if self.chunked_loss not in ("auto", "on", "off"):
            raise LSRecError(f"chunked_loss: unknown {self.chunked_loss!r}; choose auto, on or off")
        if self.name is None:
            self.name = f"lsrec-{self.preset}{'-mt' if self.multitask else ''}"

    def tokenizer(self, data) -> ItemTokenizer:
        """The prepared data's item tokenizer in this run's prompt layout."""
        return ItemTokenizer(data.vocab, self.prompt_layout)

    def uses_chunked_loss(self, vocab_size: int) -> bool:
        return self.chunked_loss == "on" or (self.chunked_loss == "auto" and vocab_size >= CHUNKED_LOSS_FROM)

    def to_dict(self) -> dict:
        return asdict(self)


# Named recipes: overrides of the defaults above (`lsrec train --recipe`), each a configuration
# measured in docs/RESULTS.md ("The recipe in `lsrec train`").
RECIPES = {
    "copies": {},  # the defaults: 40 epochs at most with a cosine decay, so its length is bounded
    # The same at a constant rate, up to 200 epochs, patience 20: the best measured on ML-100K (item 7),
    # but early stopping sets its length: 57-73 epochs there, 60-75 min on 2 cores.
    "sasrec-copies": {"lr_scheduler": "constant", "max_epochs": 200, "patience": 20},
}
# SASRec's optimisation alone, without the [START] copies: the reference of items 4 and 7.
RECIPES["sasrec"] = {**RECIPES["sasrec-copies"], "start_copies": 0}
DEFAULT_RECIPE = "copies"  # what `lsrec train` runs without --recipe


def describe_recipes() -> str:
    """The `--recipe` help text, written from RECIPES itself so it cannot drift from what runs."""
    def overrides(values: dict) -> str:
        shown = {name: f"{value:g}" if isinstance(value, float) else value for name, value in values.items()}
        return ", ".join(f"{name.replace('_', '-')} {value}" for name, value in shown.items())

    listed = [f"{name} ({overrides(values) or 'the defaults shown below'})" for name, values in RECIPES.items()]
    return "named overrides of the flags below (a flag you give wins): " + "; ".join(listed)
