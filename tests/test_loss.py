"""The training loss: mean over the batch's labels, auxiliary-task labels weighted by aux_weight,
computed on packed rows exactly as on one padded row per example."""

import math
from types import SimpleNamespace

import pytest
import torch

from lsrec.train.tasks import IGNORE, PackedCollator, start_copies
from lsrec.train.trainer import label_loss

REC, AUX = 6, 7  # task token ids at position 2


def test_label_loss_by_hand():
    vocab = 4
    hidden = torch.zeros(2, 5, vocab)  # with an identity output layer, hidden states are the logits
    hidden[0, 2, 3] = math.log(3.0)  # uniform: each label costs log(4), except here, where p = 3/6
    labels = torch.tensor([[-100, -100, -100, 3, 3],  # costs log(2) and log(4)
                           [-100, -100, -100, -100, 2]])  # costs log(4), auxiliary
    weights = torch.tensor([[1.0] * 5, [0.25] * 5])
    got = label_loss(hidden, torch.nn.Identity(), labels, weights)
    assert got.item() == pytest.approx((math.log(2) + math.log(4) + 0.25 * math.log(4)) / 3, rel=1e-6)
    # weight 1 is the plain mean over labels, as F.cross_entropy computes it
    plain = torch.nn.functional.cross_entropy(hidden[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1))
    assert label_loss(hidden, torch.nn.Identity(), labels, torch.ones(2, 5)).item() == pytest.approx(plain.item())


START, EOS = 5, 2
# a task-first tokenizer over these ids: [BOS] 1, [TASK] 3, [ARGUMENTS] 4
TOK = SimpleNamespace(layout="task-first", bos_id=1, task_marker_id=3, arguments_id=4, start_id=START,
                      task_id={"RECOMMEND": REC}.__getitem__)


def _examples():
    """RECOMMEND sequences with three [START] copies and shorter auxiliary ones, as tasks.py builds them."""
    generator = torch.Generator().manual_seed(0)
    examples = []
    for task, n_history in ((REC, 10), (AUX, 1), (REC, 4), (AUX, 1), (AUX, 2)):
        history = torch.randint(10, 40, (n_history,), generator=generator).tolist()
        answer = int(torch.randint(10, 40, (1,), generator=generator))
        ids = [1, 3, task, 4] + history + [START, answer, EOS]
        labels = [IGNORE] * (len(ids) - 2) + [answer, IGNORE]
        example = {"input_ids": ids, "labels": labels}
        if task == REC:
            labels[5:4 + n_history] = history[1:]  # every next item of the history
            example = start_copies(example, TOK, 3)
        examples.append(example)
    return examples


def test_packing_fills_rows_first_fit_longest_first():
    collator = PackedCollator(pad_id=0, recommend_id=REC, task_marker_id=3, aux_weight=0.5)
    examples = _examples()
    assert [len(e["input_ids"]) for e in examples] == [19, 8, 13, 8, 9]
    assert collator.rows([19, 8, 13, 8, 9]) == [[0], [2], [4, 1], [3]]
    batch = collator(examples)
    assert batch["input_ids"].shape == (4, 19)
    assert batch["segments"][2].tolist() == [0] * 9 + [1] * 8 + [-1] * 2
    assert set(batch["label_weights"][2].tolist()) == {0.5, 0.0}  # auxiliary labels weigh aux_weight
    unpacked = PackedCollator(pad_id=0, recommend_id=REC, task_marker_id=3, aux_weight=0.5, pack=False)(_examples())
    assert unpacked["input_ids"].shape == (5, 19)
    assert (batch["labels"] != IGNORE).sum() == (unpacked["labels"] != IGNORE).sum()


@pytest.mark.parametrize("start_id", [None, START])
def test_packed_rows_give_the_loss_and_gradients_of_padded_rows(start_id):
    """Packing is a layout change only: the same loss and gradients, with [START] copies and
    without (start_id None: each [START] is an ordinary token)."""
    from lsrec.models.llama import build_model
    from lsrec.train.tasks import start_attention

    model = build_model("small", 40, seed=0, attention_dropout=0.0)

    def loss_and_grads(pack: bool):
        batch = PackedCollator(pad_id=0, recommend_id=REC, task_marker_id=3, aux_weight=0.5, pack=pack)(_examples())
        mask, positions = start_attention(batch["input_ids"], start_id, torch.float32, batch["segments"])
        hidden = model.model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions)
        loss = label_loss(hidden.last_hidden_state, model.lm_head, batch["labels"], batch["label_weights"])
        grads = torch.autograd.grad(loss, list(model.parameters()))
        return loss, grads

    packed, padded = loss_and_grads(True), loss_and_grads(False)
    torch.testing.assert_close(packed[0], padded[0], atol=1e-6, rtol=1e-6)
    for a, b in zip(packed[1], padded[1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    # and a broken mask (segments ignored) would show
    batch = PackedCollator(pad_id=0, recommend_id=REC, task_marker_id=3, aux_weight=0.5)(_examples())
    mask, positions = start_attention(batch["input_ids"], start_id, torch.float32)
    hidden = model.model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions)
    leaky = label_loss(hidden.last_hidden_state, model.lm_head, batch["labels"], batch["label_weights"])
    assert abs(leaky.item() - padded[0].item()) > 1e-4


def test_real_token_mlps_skip_padding_and_change_no_real_token():
    """The MLPs run on the real tokens only while `running`: the same loss and gradients as on
    every padded position, and otherwise (validation, serving) the model is untouched."""
    from lsrec.models.llama import build_model
    from lsrec.train.tasks import start_attention
    from lsrec.train.trainer import RealTokenMLPs

    model = build_model("small", 40, seed=0, attention_dropout=0.0)
    batch = PackedCollator(pad_id=0, recommend_id=REC, task_marker_id=3, aux_weight=0.5, pack=False)(_examples())
    mask, positions = start_attention(batch["input_ids"], START, torch.float32, batch["segments"])
    real_only = RealTokenMLPs(model)
    rows_seen = []  # after real_only's own hook: the rows the MLP computes on
    model.model.layers[0].mlp.register_forward_pre_hook(lambda module, args: rows_seen.append(args[0].shape[:-1]))

    def loss_and_grads():
        hidden = model.model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions)
        loss = label_loss(hidden.last_hidden_state, model.lm_head, batch["labels"], batch["label_weights"])
        return loss, torch.autograd.grad(loss, list(model.parameters()))

    plain = loss_and_grads()
    with real_only.running(batch["segments"]):
        skipping = loss_and_grads()
    after = loss_and_grads()
    real = int((batch["segments"] >= 0).sum())
    assert real < batch["segments"].numel()  # the batch has padding to skip
    assert rows_seen == [batch["input_ids"].shape, (real,), batch["input_ids"].shape]
    for got in (skipping, after):
        torch.testing.assert_close(got[0], plain[0], atol=1e-6, rtol=1e-6)
        for a, b in zip(got[1], plain[1]):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_training_flops_by_hand():
    """The speed command's FLOP model on a two-row batch: 6 x (layer params) per real token, causal
    pairs within each packed sequence, the output layer on labelled positions; padding is free."""
    from lsrec.models.llama import llama_config
    from lsrec.train.speed import training_flops

    config = llama_config("small", vocab_size=40)  # hidden 64, MLP 128, 2 layers, 1 head of 64
    batch = {"segments": torch.tensor([[0, 0, 0, 1, 1], [0, 0, -1, -1, -1]]),
             "labels": torch.tensor([[IGNORE, 5, 6, IGNORE, 7], [IGNORE, 8, IGNORE, IGNORE, IGNORE]])}
    per_token = 2 * 2 * (4 * 64 * 64 + 3 * 64 * 128)
    pairs = 6 + 3 + 3  # sequences of 3, 2 and 2 tokens
    expected = 3 * (7 * per_token + 2 * 2 * 2 * 64 * pairs + 4 * 2 * 64 * 40)
    got = training_flops(config, batch)
    assert got == {"flops": expected, "tokens": 7, "padded_tokens": 10, "labels": 4}


def test_chunked_loss_equals_plain_cross_entropy(prepared_ml100k, tmp_path):
    """`--chunked-loss on` (TRL's fused LM head, through the trainer's own compute_loss) and the
    default labelled-rows loss both equal plain cross-entropy on every position's logits, in value
    and gradients, on a real collated batch (packed rows, [START] copies)."""
    import torch.nn.functional as F

    from lsrec.train.config import TrainConfig
    from lsrec.train.tasks import start_attention
    from lsrec.train.trainer import build_trainer

    _, data = prepared_ml100k
    cfg = TrainConfig(data=str(data.folder), preset="small", hidden_dropout=0, attention_dropout=0,
                      runs_dir=str(tmp_path), chunked_loss="on", batch_size=16)
    trainer, _, _ = build_trainer(cfg, log=lambda *args: None)
    assert trainer.chunked_loss
    batch = next(iter(trainer.get_train_dataloader()))
    model = trainer.model
    params = [p for p in model.parameters() if p.requires_grad]

    def with_grads(loss):
        return loss.detach(), torch.autograd.grad(loss, params)

    mask, positions = start_attention(batch["input_ids"], trainer.start_id, torch.float32, batch["segments"],
                                      trainer.copy_group)
    logits = model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions).logits
    plain = with_grads(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1)))
    chunked = with_grads(trainer.compute_loss(model, batch))
    # The head computes the labels' log-probabilities alone, not SFTTrainer's metrics (entropy, top-1).
    fused = model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions, labels=batch["labels"],
                  fused_lm_head=True)
    assert fused.entropy is None and fused.is_top1 is None
    trainer.chunked_loss = False
    labelled = with_grads(trainer.compute_loss(model, batch))
    assert (batch["label_weights"][batch["labels"] != IGNORE] == 1).all()  # aux_weight 1: the plain mean
    for loss, grads in (chunked, labelled):
        torch.testing.assert_close(loss, plain[0], atol=1e-5, rtol=1e-5)
        for a, b in zip(grads, plain[1]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
