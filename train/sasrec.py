"""SASRec (Kang & McAuley, 2018) in plain PyTorch, on the same split, masking and metrics as LSRec.

The faithful model: item embeddings scaled by sqrt(d) plus learned positions, LayerNorm, single-head
causal self-attention whose residual adds the *normalized* queries (as the original code does), a
point-wise ReLU feed-forward d -> d -> d, and scores as dot products with the shared item embeddings.
Losses: binary cross-entropy with one sampled negative per position (the original) or full-softmax
cross-entropy over all items (the strong variant of later reproductions).

Every difference to LSRec's Llama decoder is a switch (`positions`, `norm`, `mlp`, `kv_heads`, `block`,
`loss`), so the ablations swap one component at a time inside one training loop.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lsrec.tokenizer.errors import LSRecError

CHOICES = {
    "loss": ("bce", "ce"),
    "positions": ("learned", "rope"),
    "norm": ("layer", "rms"),
    "mlp": ("relu", "gated_silu"),
    "block": ("sasrec", "prenorm"),
}


@dataclass
class SASRecConfig:
    data: str = field(default="data/ml-100k", metadata={"help": "prepared dataset folder (lsrec data prepare)"})
    loss: str = field(default="ce", metadata={"help": "ce: full-softmax cross-entropy; bce: one sampled negative (original)"})
    name: str | None = field(default=None, metadata={"help": "checkpoint name; default sasrec-<loss>"})
    output_dir: str = field(default="checkpoints", metadata={"help": "best checkpoint goes to <output_dir>/<name>"})
    hidden: int = field(default=64, metadata={"help": "embedding and model width"})
    blocks: int = field(default=2, metadata={"help": "self-attention blocks (original: 2)"})
    heads: int = field(default=1, metadata={"help": "attention heads (original: 1)"})
    kv_heads: int = field(default=0, metadata={"help": "key/value heads; 0: as many as heads (1 with 2 heads: Llama's GQA)"})
    ffn: int = field(default=0, metadata={"help": "feed-forward inner width; 0: hidden (original)"})
    positions: str = field(default="learned", metadata={"help": "learned (original) or rope (Llama)"})
    norm: str = field(default="layer", metadata={"help": "layer (original) or rms (Llama)"})
    mlp: str = field(default="relu", metadata={"help": "relu (original) or gated_silu (Llama)"})
    block: str = field(default="sasrec", metadata={"help": "sasrec: residual from the normalized queries (original); "
                                                   "prenorm: x + f(norm(x)) (Llama)"})
    dropout: float = field(default=0.2, metadata={"help": "dropout on embeddings, attention and feed-forward (original: 0.2)"})
    max_len: int = field(default=200, metadata={"help": "most recent items the model sees (original: 200)"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate (original: 0.001)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (original: 0)"})
    batch_size: int = field(default=128, metadata={"help": "users per step (original: 128)"})
    max_epochs: int = field(default=400, metadata={"help": "upper bound on epochs"})
    patience: int = field(default=20, metadata={"help": "stop after this many epochs without a better validation NDCG@10"})
    seed: int = field(default=42, metadata={"help": "seed for weights, batches, negatives and dropout"})

    def __post_init__(self):
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise LSRecError(f"{name}: unknown {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        for name in ("hidden", "blocks", "heads", "max_len", "batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise LSRecError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.hidden % self.heads:
            raise LSRecError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.kv_heads < 0 or (self.kv_heads and self.heads % self.kv_heads):
            raise LSRecError(f"kv_heads must be 0 or divide heads ({self.heads}) (got {self.kv_heads})")
        if self.positions == "rope" and (self.hidden // self.heads) % 2:
            raise LSRecError("positions rope needs an even head width (hidden / heads)")
        if not 0 <= self.dropout < 1:
            raise LSRecError(f"dropout must be in [0, 1) (got {self.dropout})")
        if not 0 < self.learning_rate < 1:
            raise LSRecError(f"learning_rate must be in (0, 1) (got {self.learning_rate})")
        if self.name is None:
            self.name = f"sasrec-{self.loss}"

    def to_dict(self) -> dict:
        return asdict(self)


def build_model(cfg: SASRecConfig, n_items: int):
    """Built lazily so importing the config stays light (the CLI's --help)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    d, n_heads = cfg.hidden, cfg.heads
    n_kv = cfg.kv_heads or n_heads
    head = d // n_heads
    inner = cfg.ffn or d

    def norm():
        return nn.LayerNorm(d, eps=1e-8) if cfg.norm == "layer" else nn.RMSNorm(d, eps=1e-6)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(d, n_heads * head)
            self.k = nn.Linear(d, n_kv * head)
            self.v = nn.Linear(d, n_kv * head)
            self.out = nn.Linear(n_heads * head, d)

        def forward(self, queries, keys, mask, rope):
            b, length, _ = queries.shape
            q = self.q(queries).view(b, length, n_heads, head).transpose(1, 2)
            k = self.k(keys).view(b, length, n_kv, head).transpose(1, 2)
            v = self.v(keys).view(b, length, n_kv, head).transpose(1, 2)
            if rope is not None:
                q, k = apply_rope(q, *rope), apply_rope(k, *rope)
            if n_kv != n_heads:
                k, v = (t.repeat_interleave(n_heads // n_kv, dim=1) for t in (k, v))
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=cfg.dropout if self.training else 0.0)
            return self.out(y.transpose(1, 2).reshape(b, length, n_heads * head))

    class FeedForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.Linear(d, inner)
            self.gate = nn.Linear(d, inner) if cfg.mlp == "gated_silu" else None
            self.down = nn.Linear(inner, d)
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x):
            h = F.silu(self.gate(x)) * self.up(x) if self.gate is not None else F.relu(self.up(x))
            return self.drop(self.down(self.drop(h)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn_norm, self.ffn_norm = norm(), norm()
            self.attn, self.ffn = Attention(), FeedForward()
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x, mask, rope):
            if cfg.block == "sasrec":
                q = self.attn_norm(x)
                x = q + self.drop(self.attn(q, x, mask, rope))
                x = self.ffn_norm(x)
                return x + self.ffn(x)
            h = self.attn_norm(x)
            x = x + self.drop(self.attn(h, h, mask, rope))
            return x + self.ffn(self.ffn_norm(x))

    class SASRec(nn.Module):
        """Item index 0 is padding; items are 1..n_items. Sequences are left-padded."""

        def __init__(self):
            super().__init__()
            self.items = nn.Embedding(n_items + 1, d, padding_idx=0)
            self.positions = nn.Embedding(cfg.max_len, d) if cfg.positions == "learned" else None
            self.drop = nn.Dropout(cfg.dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.blocks))
            self.final_norm = norm()
            if cfg.positions == "rope":
                inv = 1.0 / (10000 ** (torch.arange(0, head, 2).float() / head))
                angles = torch.outer(torch.arange(cfg.max_len).float(), inv)
                self.register_buffer("rope_cos", torch.cat([angles.cos()] * 2, -1), persistent=False)
                self.register_buffer("rope_sin", torch.cat([angles.sin()] * 2, -1), persistent=False)

        def forward(self, seqs):
            """Hidden states [batch, length, d] for left-padded item indices [batch, length]."""
            length = seqs.shape[1]
            real = seqs != 0
            x = self.items(seqs) * math.sqrt(d)
            if self.positions is not None:  # the most recent item always has the last position
                x = x + self.positions(torch.arange(cfg.max_len - length, cfg.max_len, device=seqs.device))
            x = self.drop(x) * real[..., None]
            causal = torch.ones(length, length, dtype=torch.bool, device=seqs.device).tril()
            # Real keys only; a padded query may see itself so its softmax is defined (its output is zeroed).
            mask = (causal & real[:, None, :]) | torch.eye(length, dtype=torch.bool, device=seqs.device)
            mask = mask[:, None]
            rope = (self.rope_cos[:length], self.rope_sin[:length]) if self.positions is None else None
            for block in self.blocks:
                x = block(x, mask, rope) * real[..., None]
            return self.final_norm(x)

        def scores(self, hidden):
            """Dot product with every item embedding: [..., n_items] (column j is item j+1)."""
            return hidden @ self.items.weight[1:].T

    model = SASRec()
    # The original code's initialisation: Xavier-normal for every matrix (embeddings included), so the
    # first logits are small; PyTorch's N(0, 1) embeddings give logits of std ~sqrt(d) and a slow start.
    for param in model.parameters():
        if param.dim() > 1:
            nn.init.xavier_normal_(param)
    return model


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = __import__("torch").cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class SASRecRanker:
    """The benchmarks.evaluate Ranker for a SASRec model: scores are the dot products, history masked."""

    def __init__(self, model, items: list[str], max_len: int, batch_size: int = 256, meta=None):
        self.model, self.items, self.max_len, self.batch_size, self.meta = model, items, max_len, batch_size, meta
        self.index = {item: i + 1 for i, item in enumerate(items)}

    @classmethod
    def from_checkpoint(cls, folder: str | Path, **kwargs) -> "SASRecRanker":
        from safetensors.torch import load_file

        from lsrec.tokenizer.checkpoint import load_metadata

        meta = load_metadata(folder)
        cfg = SASRecConfig(**meta.raw["train_config"])
        items = meta.vocab.items
        model = build_model(cfg, len(items))
        model.load_state_dict(load_file(str(Path(folder) / WEIGHTS)))
        return cls(model.eval(), items, cfg.max_len, meta=meta, **kwargs)

    def indices(self, histories: list[list[str]]):
        import torch

        rows = [[self.index[i] for i in history[-self.max_len:]] for history in histories]
        batch = torch.zeros(len(rows), max(1, max(map(len, rows))), dtype=torch.long)
        for row, ids in enumerate(rows):
            if ids:
                batch[row, -len(ids):] = torch.tensor(ids)
        return batch

    def rank(self, histories: list[list[str]], k: int) -> list[list[tuple[str, float]]]:
        import torch

        was_training = self.model.training
        self.model.eval()
        out: list = [None] * len(histories)
        order = sorted(range(len(histories)), key=lambda i: len(histories[i]))  # little padding per batch
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                scores = self.model.scores(self.model(self.indices([histories[i] for i in chunk]))[:, -1])
                for row, i in enumerate(chunk):
                    seen = [self.index[item] - 1 for item in histories[i]]
                    if seen:
                        scores[row, seen] = float("-inf")
                top = torch.topk(scores, min(k, scores.shape[1]), dim=-1)
                for row, i in enumerate(chunk):
                    out[i] = [(self.items[int(j)], float(s)) for j, s in zip(top.indices[row], top.values[row])
                              if s > float("-inf")]
        self.model.train(was_training)
        return out


WEIGHTS = "model.safetensors"


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

    from lsrec.bench.evaluate import evaluate, split_cases
    from lsrec.tokenizer import dataset as prepared

    from .trainer import metadata_for

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    data = prepared.load(cfg.data)
    items = data.vocab.items
    index = {item: i + 1 for i, item in enumerate(items)}
    # Training sequences end at the training target (items[-3]); validation and test targets are never seen.
    sequences = [[index[i] for i in s.items[:-2]] for s in data.sequences if len(s.items) >= 4]
    if not sequences:
        raise LSRecError(f"{cfg.data}: no user has a training sequence (at least 4 interactions)")
    model = build_model(cfg, len(items))
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.98),
                                  weight_decay=cfg.weight_decay)
    ranker = SASRecRanker(model, items, cfg.max_len)
    valid = split_cases(data, "valid")
    folder = Path(cfg.output_dir) / cfg.name
    log(f"{cfg.name}: {n_params:,} parameters, {len(sequences):,} training sequences, loss {cfg.loss}")
    history: list[dict] = []
    best = None
    started = time.time()
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
        metrics = evaluate(ranker, valid, len(items))
        entry = {"epoch": epoch, "valid": metrics, "train_loss": sum(losses) / len(losses),
                 "seconds": round(time.time() - started, 1)}
        history.append(entry)
        if best is None or metrics["NDCG@10"] > best["valid"]["NDCG@10"]:
            best = entry
            save_weights(model, data, folder, metadata_for(data, {
                "name": cfg.name, "architecture": "sasrec", "parameters": n_params,
                "train_config": cfg.to_dict(), "best_epoch": epoch, "valid": metrics}), save_file)
        epochs.set_postfix(ndcg10=f"{metrics['NDCG@10']:.4f}", best=f"{best['valid']['NDCG@10']:.4f}@{best['epoch']}")
        if not progress and epoch % 10 == 0:
            log(f"epoch {epoch}: valid NDCG@10 {metrics['NDCG@10']:.4f} (best {best['valid']['NDCG@10']:.4f} "
                f"at epoch {best['epoch']}), {entry['seconds']:.0f} s")
        if epoch - best["epoch"] >= cfg.patience:
            break
    meta_path = folder / "lsrec.json"
    meta = json.loads(meta_path.read_text())
    meta["history"] = history
    meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    log(f"best validation NDCG@10 {best['valid']['NDCG@10']:.4f} at epoch {best['epoch']} of {history[-1]['epoch']} "
        f"({history[-1]['seconds'] / 60:.1f} min); saved to {folder}")
    return folder


def save_weights(model, data, folder: Path, metadata: dict, save_file) -> None:
    """Weights and lsrec.json to a temporary folder, then swapped in (never a half-written checkpoint)."""
    from lsrec.tokenizer.checkpoint import write_metadata

    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS))
    write_metadata(tmp, metadata)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
