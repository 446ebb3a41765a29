"""The training loss: every example weighs the same; auxiliary tasks weigh aux_weight."""

import math

import pytest
import torch

from lsrec.train.trainer import example_weighted_loss

REC, AUX = 6, 7  # task token ids at position 2


def test_example_weighted_loss_by_hand():
    vocab = 4
    # uniform logits: every labelled token costs log(4)... except where we make one confident
    logits = torch.zeros(2, 5, vocab)
    logits[0, 2, 3] = math.log(3.0)  # position 2 predicts token 3 with p = 3/6 = 0.5
    input_ids = torch.tensor([[1, 0, REC, 3, 3], [1, 0, AUX, 2, 2]])
    labels = torch.tensor([[-100, -100, -100, 3, 3],  # two labels: -log(0.5), -log(1/4)
                           [-100, -100, -100, -100, 2]])  # one label: -log(1/4)
    first = (math.log(2) + math.log(4)) / 2
    second = math.log(4)
    got = example_weighted_loss(logits, input_ids, labels, REC, aux_weight=0.25, batch_size=4)
    assert got.item() == pytest.approx((first + 0.25 * second) / 4, rel=1e-6)
    got = example_weighted_loss(logits, input_ids, labels, REC, aux_weight=1.0, batch_size=2)
    assert got.item() == pytest.approx((first + second) / 2, rel=1e-6)
