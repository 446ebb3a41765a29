"""SASRec baseline: every ablation switch builds a causal model, padding never changes a score, BCE
negatives avoid the user's items, it learns a simple pattern, and its checkpoint evaluates through the
shared evaluation and `lsrec eval`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lsrec.tokenizer.errors import LSRecError
from lsrec.bench.sasrec_ranker import SASRecRanker
from lsrec.models.sasrec import SASRecConfig, build_model
from lsrec.train.sasrec import sample_negatives, train_sasrec, training_batches

VARIANTS = [
    {},
    {"positions": "rope"},
    {"norm": "rms"},
    {"mlp": "gated_silu", "ffn": 24},
    {"heads": 2, "kv_heads": 1},
    {"block": "prenorm"},
    {"positions": "rope", "norm": "rms", "mlp": "gated_silu", "heads": 2, "kv_heads": 1, "block": "prenorm"},
]


def tiny(**kw):
    return SASRecConfig(hidden=16, blocks=2, max_len=12, dropout=0.0, **kw)


@pytest.mark.parametrize("switches", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "original")
def test_every_variant_is_causal_and_ignores_padding(switches):
    torch.manual_seed(0)
    model = build_model(tiny(**switches), n_items=30).eval()
    seq = torch.tensor([[0, 0, 3, 7, 1, 9, 4]])
    changed = seq.clone()
    changed[0, -1] = 22  # change the last item: earlier positions must not move
    with torch.no_grad():
        a, b = model(seq), model(changed)
        assert torch.allclose(a[0, :-1], b[0, :-1], atol=1e-5)
        assert not torch.allclose(a[0, -1], b[0, -1], atol=1e-4)
        # Same history, more left padding (a longer neighbour in the batch): same final state.
        padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), seq], 1)
        assert torch.allclose(model(padded)[0, -1], a[0, -1], atol=1e-5)


def test_kv_heads_shrink_the_key_value_projections():
    full = build_model(tiny(heads=2), 30)
    shared = build_model(tiny(heads=2, kv_heads=1), 30)
    assert full.blocks[0].attn.k.out_features == 16 and shared.blocks[0].attn.k.out_features == 8


@pytest.mark.parametrize("field,value,message", [
    ("loss", "mse", "loss: unknown"), ("positions", "sinus", "positions: unknown"),
    ("kv_heads", 3, "kv_heads must be 0 or divide heads"), ("hidden", 0, "hidden must be at least 1"),
    ("dropout", 1.0, "dropout must be in"),
])
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises(LSRecError, match=message):
        SASRecConfig(**{field: value})


def test_training_batches_shift_by_one_and_left_pad():
    sequences = [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11, 12, 13]]
    seen = []
    for inputs, targets in training_batches(sequences, max_len=4, batch_size=2, generator=torch.Generator().manual_seed(0)):
        for x, y in zip(inputs.tolist(), targets.tolist()):
            real = [(a, b) for a, b in zip(x, y) if b]
            assert all(b == a + 1 for a, b in real)  # each target is the next item
            assert x[: len(x) - len(real)] == [0] * (len(x) - len(real))  # padding on the left only
            seen.append(real)
    assert sorted(len(r) for r in seen) == [1, 3, 4]  # the 7-item user keeps its 4 most recent steps


def test_bce_negatives_avoid_the_users_items():
    g = torch.Generator().manual_seed(0)
    targets = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    seen = torch.zeros(2, 9, dtype=torch.bool)
    seen[0, [1, 2, 3, 4, 5, 6]] = True  # user 0 has seen 6 of the 8 items
    seen[1, [4, 5, 6, 7]] = True
    for _ in range(20):
        negatives = sample_negatives(targets, seen, n_items=8, generator=g)
        real = targets != 0
        assert not torch.gather(seen, 1, negatives)[real].any()
        assert ((negatives >= 1) & (negatives <= 8)).all()


def write_chain(folder, users=40, items=20):
    """Every user walks forward through the catalogue one item at a time: next = previous + 1."""
    import random

    rng = random.Random(0)
    rows, t = ["user,item,timestamp"], 0
    for u in range(1, users + 1):
        start = rng.randrange(items - 10)
        for i in range(start, start + rng.randint(6, 10)):
            t += 1
            rows.append(f"{u},{i + 1},{t}")
    path = folder / "chain.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def chain_data(tmp_path_factory):
    from lsrec.tokenizer.dataset import DataConfig, prepare

    root = tmp_path_factory.mktemp("chain")
    return prepare(DataConfig(source=str(write_chain(root)), output=str(root / "data")))


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_learns_the_next_item_and_saves_a_checkpoint_that_evaluates(chain_data, tmp_path, loss):
    from lsrec.bench.evaluate import evaluate
    from lsrec.tokenizer.dataset import split_cases
    from lsrec.bench.offline import evaluate_checkpoint, load_ranker

    cfg = SASRecConfig(data=str(chain_data.folder), loss=loss, hidden=32, max_len=20, dropout=0.1,
                       learning_rate=5e-3, batch_size=8, max_epochs=60, patience=60, seed=0,
                       output_dir=str(tmp_path))
    folder = train_sasrec(cfg, log=lambda *_: None, progress=False)
    meta = json.loads((folder / "lsrec.json").read_text())
    assert meta["architecture"] == "sasrec" and meta["split"]["sha256"] == chain_data.split_hash
    assert len(meta["history"]) == 60 and meta["best_epoch"] == max(
        meta["history"], key=lambda h: h["valid"]["NDCG@10"])["epoch"]
    ranker = load_ranker(folder)
    assert isinstance(ranker, SASRecRanker)
    test = evaluate(ranker, split_cases(chain_data, "test"), len(chain_data.vocab.items))
    assert test["HR@1"] > 0.5, test  # popularity scores ~0.1 here; the chain rule is learnable
    tops = ranker.rank([c.history for c in split_cases(chain_data, "test")], 20)
    for case, top in zip(split_cases(chain_data, "test"), tops):
        assert not set(case.history) & {item for item, _ in top}  # history masked
    result = evaluate_checkpoint(folder)
    assert result["all_users"]["HR@1"] == test["HR@1"]


def test_cli_trains_sasrec_and_rejects_bad_flags(chain_data, tmp_path):
    cli = [sys.executable, "-m", "lsrec.cli", "baseline", "sasrec"]
    proc = subprocess.run([*cli, "--data", str(chain_data.folder), "--hidden", "8", "--max-epochs", "2",
                           "--output-dir", str(tmp_path), "--name", "s"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "s" / "model.safetensors").is_file()
    proc = subprocess.run([*cli, "--loss", "hinge"], capture_output=True, text=True)
    assert proc.returncode == 1 and "loss: unknown 'hinge'" in proc.stderr + proc.stdout
