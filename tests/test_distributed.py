"""`lsrec train` under torchrun: two gloo ranks on CPU, through TRL's Trainer unchanged. One 2-rank
step equals one 1-process step on the same global batch; rank 0 alone validates, saves and decides
early stopping and resuming, and the other rank follows. (test_served.py serves a 2-rank checkpoint.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from test_cli_end_to_end import prepare_tiny, run

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "lsrec.cli"]
# 40 users: 40 RECOMMEND rows and 4 x 40 auxiliary rows (all four tasks every epoch, so no random draw
# depends on which rank reads a row): one optimizer step per epoch, 100 rows per rank.
ONE_STEP = ["--data", "data/tiny", "--preset", "small", "--multitask", "--no-task-sampling", "--batch-size", "200",
            "--eval-batch-size", "16", "--hidden-dropout", "0", "--attention-dropout", "0"]


def torchrun(*args, cwd):
    proc = subprocess.run([*TORCHRUN, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LSREC_DEBUG": ""})
    if proc.returncode != 0:
        raise AssertionError(f"torchrun lsrec {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    prepare_tiny(root)
    return root


def test_two_rank_step_equals_one_process_step(workspace):
    # A small learning rate keeps Adam's first step (about lr x sign of the gradient) far below 1e-6
    # wherever the two gradients agree in sign; a wrongly normalised or split batch flips signs.
    args = [*ONE_STEP, "--max-epochs", "1", "--learning-rate", "1e-4", "--no-resume"]
    two = torchrun("train", *args, "--name", "two", cwd=workspace)
    run("train", *args, "--name", "one", cwd=workspace)

    meta = {name: json.loads((workspace / "checkpoints" / name / "lsrec.json").read_text()) for name in ("one", "two")}
    assert meta["one"]["processes"] == 1 and meta["two"]["processes"] == 2
    assert "200 examples per epoch, 2 processes" in " ".join(two.stdout.split())
    # Rank 0 alone logs, validates and prints the folder.
    assert two.stdout.count("epoch 1: valid NDCG@10") == 1
    assert two.stdout.strip().splitlines()[-1] == "checkpoints/two"
    one, both = (load_file(workspace / "checkpoints" / name / "model.safetensors") for name in ("one", "two"))
    assert one.keys() == both.keys()
    assert max((one[k] - both[k]).abs().max().item() for k in one) < 1e-6

    # The rank-0 checkpoint is a plain LSRec checkpoint.
    out = run("recommend", "checkpoints/two", "--user", "1", "-k", "3", cwd=workspace).stdout
    assert "held-out next movie" in out


def test_early_stopping_and_resume_follow_rank_zero(workspace):
    """At a learning rate too small to move a weight, validation never improves after epoch 1, so
    rank 0 stops the run at epoch 2 (patience 1); a rank that missed the decision would wait forever
    in the next step's gradient exchange. Starting the run again finds it finished."""
    args = [*ONE_STEP, "--max-epochs", "6", "--patience", "1", "--learning-rate", "1e-12", "--name", "stops"]
    first = torchrun("train", *args, "--no-resume", cwd=workspace)
    assert first.stdout.count("early stop: no better validation NDCG@10 for 1 epochs") == 1
    history = json.loads((workspace / "checkpoints/stops/lsrec.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]

    again = torchrun("train", *args, cwd=workspace)
    assert again.stdout.count("this run had already stopped early") == 1
    assert again.stdout.strip().splitlines()[-1] == "checkpoints/stops"
