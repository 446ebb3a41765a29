"""Training SASRec (lsrec.models.sasrec) on the same split, masking and metrics as LSRec.

Losses: binary cross-entropy with one sampled negative per position (the original) or full-softmax
cross-entropy over all items (the strong variant of later reproductions). Early stopping is the
shared one (train/early_stopping.py); the best model is written by the one checkpoint writer.
"""

from __future__ import annotations

from pathlib import Path

from lsrec.models.sasrec import WEIGHTS, SASRecConfig, build_model
from lsrec.tokenizer.checkpoint import checkpoint_folder, update_metadata, write_checkpoint
from lsrec.tokenizer.errors import LSRecError

from .early_stopping import EarlyStopping
from .runtime import prepare_process


def training_batches(sequences: list[list[int]], max_len: int, batch_size: int, generator):
    """Shuffled batches of (inputs, targets): each user's training sequence shifted by one, the most
    recent max_len positions, left-padded with 0 to the longest in the batch. Users are shuffled, then
    sorted by length within groups of 8 batches, so batches waste little padding (2x faster here)."""
    import torch

    order = torch.randperm(len(sequences), generator=generator).tolist()
    group = 8 * batch_size
    batches = []
    for start in range(0, len(order), group):
        chunk = sorted(order[start : start + group], key=lambda i: len(sequences[i]))
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    for b in torch.randperm(len(batches), generator=generator).tolist():
        rows = [sequences[i][-(max_len + 1):] for i in batches[b]]
        width = max(len(seq) - 1 for seq in rows)
        inputs = torch.zeros(len(rows), width, dtype=torch.long)
        targets = torch.zeros(len(rows), width, dtype=torch.long)
        for r, seq in enumerate(rows):
            n = len(seq) - 1
            inputs[r, width - n:] = torch.tensor(seq[:-1])
            targets[r, width - n:] = torch.tensor(seq[1:])
        yield inputs, targets


def sequence_loss(model, inputs, targets, loss: str, n_items: int, generator, seen):
    """Mean loss over the real positions. bce: the target against one random item the user never
    interacted with (as the original samples); ce: softmax over every item."""
    import torch
    import torch.nn.functional as F

    hidden = model(inputs)
    real = targets != 0
    if loss == "ce":
        logits = model.scores(hidden[real])
        return F.cross_entropy(logits, targets[real] - 1)
    negatives = sample_negatives(targets, seen, n_items, generator)
    h = hidden[real]
    pos = (h * model.items(targets[real])).sum(-1)
    neg = (h * model.items(negatives[real])).sum(-1)
    return F.binary_cross_entropy_with_logits(torch.cat([pos, neg]),
                                              torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]))


def sample_negatives(targets, seen, n_items: int, generator):
    """One random item per position that the user never interacted with (seen[user, item]), as the
    original samples; drawn again until no draw falls on a seen item."""
    import torch

    negatives = torch.randint(1, n_items + 1, targets.shape, generator=generator)
    real = targets != 0
    while True:
        clash = torch.gather(seen, 1, negatives) & real
        if not clash.any():
            return negatives
        negatives[clash] = torch.randint(1, n_items + 1, (int(clash.sum()),), generator=generator)


def train_sasrec(cfg: SASRecConfig, log=print, progress=True) -> Path:
    """Train with early stopping on validation NDCG@10; the best model goes to <output_dir>/<name>."""
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from lsrec.bench.sasrec_ranker import SASRecRanker
    from lsrec.tokenizer import dataset as prepared

    prepare_process()
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    data = prepared.load(cfg.data)
    items = data.vocab.items
    index = {item: i + 1 for i, item in enumerate(items)}
    # Each training sequence ends at the training target; validation and test targets are never seen.
    sequences = []
    for s in data.sequences:
        history, target = s.split("train")
        if history:
            sequences.append([index[i] for i in [*history, target]])
    if not sequences:
        raise LSRecError(f"{cfg.data}: no user has a training sequence (at least 4 interactions)")
    model = build_model(cfg, len(items))
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.98),
                                  weight_decay=cfg.weight_decay)
    ranker = SASRecRanker(model, items, cfg.max_len)
    stopping = EarlyStopping(data, cfg.patience)
    folder = checkpoint_folder(cfg.output_dir, cfg.name)
    log(f"{cfg.name}: {n_params:,} parameters, {len(sequences):,} training sequences, loss {cfg.loss}")
    epochs = tqdm(range(1, cfg.max_epochs + 1), desc=cfg.name, unit="epoch", disable=not progress)
    for epoch in epochs:
        model.train()
        losses = []
        for inputs, targets in training_batches(sequences, cfg.max_len, cfg.batch_size, generator):
            seen = None
            if cfg.loss == "bce":
                seen = torch.zeros(len(inputs), len(items) + 1, dtype=torch.bool)
                seen.scatter_(1, torch.cat([inputs, targets], 1), True)
            loss = sequence_loss(model, inputs, targets, cfg.loss, len(items), generator, seen)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        improved = stopping.update(ranker, epoch, sum(losses) / len(losses))
        best = stopping.best
        if improved:
            write_checkpoint(folder, data, {
                "name": cfg.name, "architecture": "sasrec", "parameters": n_params,
                "train_config": cfg.to_dict(), "best_epoch": epoch, "valid": best["valid"]},
                lambda tmp: save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
                                      str(tmp / WEIGHTS)), tokenizer_files=False)
        epochs.set_postfix(ndcg10=f"{stopping.history[-1]['valid']['NDCG@10']:.4f}",
                           best=f"{best['valid']['NDCG@10']:.4f}@{best['epoch']}")
        if not progress and epoch % 10 == 0:
            log(stopping.describe(improved))
        if stopping.should_stop(epoch):
            break
    # The history is written once the run is over: scripts/paper_tables.sh reads it as "finished".
    update_metadata(folder, history=stopping.history)
    history = stopping.history
    log(f"best validation NDCG@10 {best['valid']['NDCG@10']:.4f} at epoch {best['epoch']} of {history[-1]['epoch']} "
        f"({history[-1]['seconds'] / 60:.1f} min); saved to {folder}")
    return folder
