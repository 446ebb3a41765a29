"""Train LSRec with TRL's SFTTrainer; early-stop on validation NDCG@10; save the best checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from lsrec.tokenizer import dataset as prepared
from lsrec.tokenizer.checkpoint import checkpoint_folder, update_metadata, write_checkpoint
from lsrec.tokenizer.errors import LSRecError

from .config import TrainConfig
from .early_stopping import EarlyStopping
from .runtime import prepare_process
from .tasks import (IGNORE, PackedCollator, SampledAuxiliaryTasks, available_tasks, build_examples, copy_group, start_attention,
                    start_copies)

STATE_FILE = "early_stopping.json"


def process_layout() -> tuple[int, int]:
    """(rank, number of processes) as torchrun or `accelerate launch` set them; (0, 1) in a plain run."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def from_rank_zero(value):
    """Rank 0's `value` on every rank (the other ranks wait for it); `value` itself in a plain run."""
    if process_layout()[1] == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


def save_model(model, data: prepared.PreparedData, folder: Path, metadata: dict) -> Path:
    """An LSRec checkpoint: the Hugging Face model, the tokenizer files and lsrec.json."""
    return write_checkpoint(folder, data, metadata, lambda tmp: model.save_pretrained(str(tmp)))


def make_callback(cfg: TrainConfig, data: prepared.PreparedData, run_dir: Path, tasks: list[str], log):
    from transformers import TrainerCallback

    from lsrec.bench.lsrec_ranker import LSRecRanker

    folder = checkpoint_folder(cfg.output_dir, cfg.name)

    class RankingEarlyStopping(TrainerCallback):
        """The shared EarlyStopping after every epoch of TRL's loop; the best model is saved to `folder`."""

        def __init__(self):
            self.stopping = EarlyStopping(data, cfg.patience)

        def restore(self, history: list[dict]):
            self.stopping = EarlyStopping(data, cfg.patience, history)

        def validate_and_save(self, model, state):
            stopping = self.stopping
            losses = [h["loss"] for h in state.log_history if "loss" in h]
            ranker = LSRecRanker(model, cfg.tokenizer(data), batch_size=cfg.eval_batch_size)
            improved = stopping.update(ranker, round(state.epoch), losses[-1] if losses else None)
            if improved:
                best = stopping.best
                save_model(model, data, folder, {
                    "name": cfg.name, "architecture": "llama", "preset": cfg.preset, "tasks": tasks,
                    "prompt_layout": cfg.prompt_layout,
                    "train_config": cfg.to_dict(), "processes": process_layout()[1], "best_epoch": best["epoch"],
                    "valid": best["valid"], "history": stopping.history,
                })
            else:
                update_metadata(folder, history=stopping.history)  # complete, also after the best epoch
            (run_dir / STATE_FILE).write_text(json.dumps(stopping.history, indent=1))
            log(stopping.describe(improved))

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            # Validation and saving run on rank 0 alone; every rank then takes its history, so all stop
            # at the same epoch (a rank that trained on alone would wait forever for the others).
            if state.is_world_process_zero:
                self.validate_and_save(model, state)
            self.stopping.history = from_rank_zero(self.stopping.history)
            if self.stopping.should_stop(round(state.epoch)):
                log(f"early stop: no better validation NDCG@10 for {cfg.patience} epochs")
                control.should_training_stop = True
            return control

    return RankingEarlyStopping()


def label_loss(hidden, lm_head, labels, label_weights, num_labels=None):
    """Weighted next-token loss over the labelled positions only (`weighted_mean`). The output layer
    and the softmax run on those rows of `hidden`, not on every position (prompts and padding are
    most of an auxiliary example)."""
    import torch
    import torch.nn.functional as F

    labelled = labels[:, 1:] != IGNORE
    token_loss = torch.zeros(labelled.shape, dtype=torch.float32, device=hidden.device)
    logits = lm_head(hidden[:, :-1][labelled])
    token_loss[labelled] = F.cross_entropy(logits.float(), labels[:, 1:][labelled], reduction="none")
    return weighted_mean(token_loss, labels, label_weights, num_labels)


def weighted_mean(token_loss, labels, label_weights, num_labels=None):
    """Sum of each next-token loss (`token_loss[:, t]` predicts `labels[:, t + 1]`, zero where that
    is IGNORE) times its label's weight, divided by `num_labels` (the Trainer's count over the whole
    optimizer step, every rank included) or else by this batch's labels."""
    import torch

    labelled = labels[:, 1:] != IGNORE
    divisor = labelled.sum() if num_labels is None else num_labels
    return (token_loss * label_weights[:, 1:] * labelled).sum() / torch.as_tensor(divisor).clamp(min=1)


def make_trainer_class():
    from trl import SFTTrainer

    class TaskWeightedSFTTrainer(SFTTrainer):
        """SFTTrainer on `PackedCollator` batches whose loss down-weights the auxiliary tasks.

        Batches grouped by length hold mostly one task, and a batch of one-label auxiliary prompts
        would otherwise move the weights as much as a batch of RECOMMEND sequences with a hundred
        labels each: measured on ML-100K, that costs RECOMMEND a third of its validation NDCG@10."""

        start_id: int | None = None  # set when RECOMMEND rows hold [START] copies (start_copies)
        copy_group: int = 1  # tokens per copy (tasks.copy_group)
        chunked_loss = False  # the output layer through TRL's chunked head (big catalogues)
        real_token_mlps: RealTokenMLPs | None = None  # set in build_trainer
        loss_is_scaled_for_ga = True  # compute_loss divides by the labels of the whole optimizer step

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            input_ids, labels, weights = inputs["input_ids"], inputs["labels"], inputs["label_weights"]
            mask, positions = start_attention(input_ids, self.start_id, self.model.dtype, inputs["segments"],
                                              self.copy_group)
            # Through the (possibly DDP-wrapped) model, never materialising every position's logits.
            with self.real_token_mlps.running(inputs["segments"]):
                if self.chunked_loss:
                    # TRL's fused LM head (installed in build_trainer): log-probabilities of the labels,
                    # scored in vocabulary tiles, so no (positions x vocabulary) matrix exists.
                    outputs = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, labels=labels,
                                    fused_lm_head=True)
                    loss = weighted_mean(-outputs.log_probs, labels, weights, num_items_in_batch)
                else:
                    # The last hidden states only; the output layer runs on the labelled positions.
                    outputs = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                                    logits_to_keep=1, output_hidden_states=True)
                    loss = label_loss(outputs.hidden_states[-1], self.model.lm_head, labels, weights,
                                      num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                # As Trainer.compute_loss: the divisor counts every rank's labels and DDP averages the
                # gradients over ranks, so N ranks give the gradient of one process on the whole batch.
                loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    return TaskWeightedSFTTrainer


def build_trainer(cfg: TrainConfig, log=print):
    """The TRL trainer of a run (model, examples, arguments), not started; also the data and tasks."""
    import torch
    from datasets import Dataset
    from transformers import PreTrainedTokenizerFast
    from trl import SFTConfig

    from lsrec.models.llama import build_model

    rank, processes = process_layout()
    if rank != 0:
        log = _quiet
    if cfg.batch_size % processes:
        raise LSRecError(f"batch_size {cfg.batch_size} is the global batch and must divide evenly among the "
                         f"{processes} processes")
    prepare_process()  # torchrun sets OMP_NUM_THREADS (1 per process); a user's budget is respected too
    data = prepared.load(cfg.data)
    tok = cfg.tokenizer(data)
    tasks = available_tasks(data) if cfg.multitask else ["RECOMMEND"]
    examples = build_examples(data, tasks, cfg.all_positions, cfg.aux_history, tok)
    if cfg.start_copies:
        examples = [start_copies(e, tok, cfg.start_copies) if e["task"] == "RECOMMEND" else e
                    for e in examples]
    if not examples:
        raise LSRecError(f"{cfg.data}: no training examples")
    if cfg.multitask and cfg.task_sampling:
        train_set = SampledAuxiliaryTasks(examples).as_dataset()
    else:
        train_set = Dataset.from_list([{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples])
    model = build_model(cfg.preset, len(data.vocab), cfg.seed, pad_id=tok.pad_id, bos_id=tok.bos_id,
                        eos_id=tok.eos_id, attention_dropout=cfg.attention_dropout, init=cfg.init)
    add_training_dropout(model, cfg.hidden_dropout)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{cfg.name}: {n_params:,} parameters, tasks {', '.join(tasks)}, {len(train_set):,} examples per epoch"
        + (f", {processes} processes" if processes > 1 else ""))

    run_dir = Path(cfg.runs_dir) / cfg.name
    args = SFTConfig(
        output_dir=str(run_dir),
        num_train_epochs=cfg.max_epochs,
        per_device_train_batch_size=cfg.batch_size // processes,  # the same steps on any number of ranks
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        adam_beta2=cfg.adam_beta2,
        # Sequences are already in the prompt format and shorter than the context; packing them on CPU
        # would make attention quadratic in the pack length, so batches group similar lengths instead.
        max_length=None,
        packing=False,
        train_sampling_strategy="group_by_length",
        bf16=cfg.bf16,
        # TRL turns it on by default; a model this small has little to save, and recomputing every
        # forward in the backward pass cost a third of each step (docs/BENCHMARKS.md, "Training").
        gradient_checkpointing=False,
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False,  # every parameter gets a gradient each step
        seed=cfg.seed,
        data_seed=cfg.seed,
        save_strategy="epoch",
        save_total_limit=1,
        eval_strategy="no",
        logging_strategy="epoch",
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=False,
        # Examples are already token ids with labels (-100 outside the answers).
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
    )
    hf_tok = PreTrainedTokenizerFast.from_pretrained(str(data.folder))
    collator = PackedCollator(tok.pad_id, tok.task_id("RECOMMEND"), tok.task_marker_id, cfg.aux_weight, pack=cfg.pack)
    trainer = make_trainer_class()(model=model, args=args, train_dataset=train_set, processing_class=hf_tok,
                                   data_collator=collator)
    trainer.real_token_mlps = RealTokenMLPs(model)
    trainer.start_id = tok.start_id if cfg.start_copies else None
    trainer.copy_group = len(copy_group(tok))
    trainer.chunked_loss = cfg.uses_chunked_loss(len(data.vocab))
    if trainer.chunked_loss:
        from trl.trainer.utils import add_fused_lm_head

        # SFTTrainer's head also computes each position's entropy and top-1 flag for its own metrics,
        # which compute_loss never reads; this head returns the labels' log-probabilities alone.
        add_fused_lm_head(trainer.model, outputs=("log_probs",))
    return trainer, data, tasks


def train(cfg: TrainConfig, log=print) -> Path:
    """Train and return the folder of the best checkpoint. Under torchrun every rank trains; rank 0
    alone validates, saves, logs and manages the run folder, and the others follow its decisions."""
    trainer, data, tasks = build_trainer(cfg, log)
    main = trainer.is_world_process_zero()
    if not main:
        log = _quiet
    run_dir = Path(trainer.args.output_dir)
    resume_from, history = from_rank_zero(_prepare_run_dir(run_dir, cfg) if main else None)

    callback = make_callback(cfg, data, run_dir, tasks, log)
    folder = checkpoint_folder(cfg.output_dir, cfg.name)
    if resume_from:
        epoch = round(json.loads((Path(resume_from) / "trainer_state.json").read_text())["epoch"])
        callback.restore([h for h in history if h["epoch"] <= epoch])
        log(f"resuming from {resume_from} (epoch {epoch})")
        if callback.stopping.best and callback.stopping.should_stop(epoch):
            log("this run had already stopped early")
            return folder
    trainer.add_callback(callback)
    trainer.train(resume_from_checkpoint=resume_from)
    best = callback.stopping.best
    log(f"best validation NDCG@10 {best['valid']['NDCG@10']:.4f} at epoch {best['epoch']}; saved to {folder}")
    return folder


def _prepare_run_dir(run_dir: Path, cfg: TrainConfig) -> tuple[str | None, list[dict]]:
    """Empty the run folder, or with `resume` find its newest trainer checkpoint and the validation
    history; record the configuration."""
    run_dir.mkdir(parents=True, exist_ok=True)
    resume_from = _last_trainer_checkpoint(run_dir) if cfg.resume else None
    if not cfg.resume:
        shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
    (run_dir / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    state = run_dir / STATE_FILE
    history = json.loads(state.read_text()) if resume_from and state.is_file() else []
    return (str(resume_from) if resume_from else None), history


def _quiet(*args, **kwargs) -> None:
    """The log of ranks other than 0: one copy of each line is enough."""


def _last_trainer_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete trainer checkpoint. The Trainer writes trainer_state.json last, so a
    folder without a readable one was cut off mid-save (a killed run) and is removed."""
    found = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    for folder in reversed(found):
        try:
            json.loads((folder / "trainer_state.json").read_text())
            return folder
        except (OSError, ValueError):
            shutil.rmtree(folder, ignore_errors=True)
    return None


class RealTokenMLPs:
    """Forward hooks that run every layer's MLP on a batch's real tokens only, not on its padding.

    The MLP is three quarters of a layer's matmuls and acts on each token alone, so the real tokens
    get the same values; padding (a sixth of the rows' tokens on ML-100K) gets zeros, and no real
    token attends to it or is scored on it. Active only inside `running`: the saved model, validation
    and serving are untouched."""

    def __init__(self, model):
        self.index = None  # flat positions of the real tokens, while running
        self.shape = None
        for layer in model.model.layers:
            layer.mlp.register_forward_pre_hook(self.gather)
            layer.mlp.register_forward_hook(self.scatter)

    @contextmanager
    def running(self, segments):
        """Within: the MLPs of forward passes on rows numbered by `segments` (-1: padding)."""
        real = segments.reshape(-1) >= 0
        self.index = None if bool(real.all()) else real.nonzero()[:, 0]
        try:
            yield
        finally:
            self.index = None

    def gather(self, module, args):
        if self.index is None:
            return None
        (hidden,) = args
        self.shape = hidden.shape
        return (hidden.reshape(-1, hidden.shape[-1])[self.index],)

    def scatter(self, module, args, output):
        if self.index is None:
            return None
        full = output.new_zeros(self.shape[:-1] + output.shape[-1:])
        full.view(-1, output.shape[-1])[self.index] = output
        return full


def add_training_dropout(model, p: float) -> None:
    """Dropout on the embeddings and on every attention and MLP output, active only in training.

    Llama has no such dropout, and a 1M-parameter model on 100k interactions overfits without it
    (SASRec uses 0.2-0.5 in the same places). Forward hooks keep the saved model a plain
    LlamaForCausalLM: nothing changes at inference, in transformers or in vLLM."""
    if p <= 0:
        return

    def hook(module, inputs, output):
        return fast_dropout(output, p) if module.training else output

    model.model.embed_tokens.register_forward_hook(hook)
    for layer in model.model.layers:
        layer.self_attn.o_proj.register_forward_hook(hook)
        layer.mlp.down_proj.register_forward_hook(hook)


def fast_dropout(x, p: float):
    """Dropout with the keep mask drawn as random 16-bit integers, four from each 64-bit draw: each
    element kept with probability 1 - p (p rounded to a multiple of 1/65536) and kept ones scaled
    by 1 / (1 - p), as `F.dropout`, in a quarter of its time on the CPU, where `bernoulli_` was a
    sixth of a training step and one uniform float per element still a sixteenth."""
    import torch

    draws = torch.empty((x.numel() + 3) // 4, dtype=torch.int64, device=x.device).random_(-2**63, None)
    bits = draws.view(torch.int16)[:x.numel()].view(x.shape)
    keep = (bits >= round(p * 65536) - 32768).to(x.dtype).mul_(1 / (1 - p))
    return x * keep
