"""The training loss: mean over the batch's labels, auxiliary-task labels weighted by aux_weight."""

import math

import pytest
import torch

from lsrec.train.trainer import task_weighted_loss

REC, AUX = 6, 7  # task token ids at position 2


def test_task_weighted_loss_by_hand():
    vocab = 4
    logits = torch.zeros(2, 5, vocab)  # uniform: each label costs log(4) ...
    logits[0, 2, 3] = math.log(3.0)  # ... except here, where token 3 has p = 3/6
    input_ids = torch.tensor([[1, 0, REC, 3, 3], [1, 0, AUX, 2, 2]])
    labels = torch.tensor([[-100, -100, -100, 3, 3],  # costs log(2) and log(4)
                           [-100, -100, -100, -100, 2]])  # costs log(4), auxiliary
    got = task_weighted_loss(logits, input_ids, labels, REC, aux_weight=0.25)
    assert got.item() == pytest.approx((math.log(2) + math.log(4) + 0.25 * math.log(4)) / 3, rel=1e-6)
    # weight 1 is the plain mean over labels, as F.cross_entropy computes it
    plain = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1))
    assert task_weighted_loss(logits, input_ids, labels, REC, aux_weight=1.0).item() == pytest.approx(plain.item())
