"""The DPO stage: preference data (lsrec.train.preferences), the token ids TRL's DPOTrainer sees, and a
tiny SFT -> DPO -> eval run through the `lsrec` command on synthetic data."""

from __future__ import annotations

import hashlib
import json

import pytest

from lsrec.tokenizer.prompts import answer_rule
from lsrec.train.preferences import build_preferences, training_popularity
from lsrec.train.tasks import build_examples


class GreedyForFuture:
    """A stand-in for LSRecRanker whose top-1 is the user's test target, else the validation target,
    else a history item, else the lowest allowed item id that is not the training target, each only if
    the shared answer rule (history masked, plus the excludes it is given) allows it. A preference
    builder that forgot to mask anything would hand it straight to the rejected answers."""

    def __init__(self, data, right_users=()):
        tok = data.tokenizer
        self.order = {}
        for seq in data.sequences:
            ids = [tok.item_id(i) for i in seq.items]
            prefer = [ids[-1], ids[-2], *ids[:-3]]
            if seq.user in right_users:  # this user's top-1 is the training target: no self-play pair
                prefer = [ids[-3]]
            self.order[tuple(ids[:-3])] = (prefer, ids[-3])
        self.tok = tok

    def rank_ids(self, prompts, excludes, k):
        out = []
        for prompt, exclude in zip(prompts, excludes):
            family, banned = answer_rule(self.tok, prompt, exclude)
            prefer, target = self.order[tuple(prompt[4:-1])]
            rest = [i for i in family if i != target]
            allowed = [i for i in (*prefer, *rest) if i in family and i not in banned]
            out.append([(allowed[0], 0.0)])
        return out


def _sequence_ids(data):
    tok = data.tokenizer
    return {seq.user: [tok.item_id(i) for i in seq.items] for seq in data.sequences}


@pytest.mark.parametrize("negatives, per_prompt", [("self-play", 1), ("popularity", 3), ("both", 2)])
def test_preferences_never_reject_a_seen_or_held_out_item(prepared_ml100k, negatives, per_prompt):
    _, data = prepared_ml100k
    tok = data.tokenizer
    users = _sequence_ids(data)
    rows = build_preferences(data, GreedyForFuture(data), negatives, per_prompt, seed=0)
    assert rows
    sft = {ex["user"]: ex["input_ids"] for ex in build_examples(data, ["RECOMMEND"], all_positions=False)}
    for row in rows:
        ids = users[row["user"]]
        # The prompt and the chosen answer are the SFT RECOMMEND example of the training target, token for token.
        assert row["prompt_ids"] + row["chosen_ids"] == sft[[s.user for s in data.sequences].index(row["user"])]
        assert row["chosen_ids"] == [ids[-3], tok.eos_id]
        rejected, eos = row["rejected_ids"]
        assert eos == tok.eos_id and rejected in tok.item_range
        assert rejected not in ids  # not history, not the training, validation or test target
        assert not {ids[-1], ids[-2]} & set(row["prompt_ids"])
    kinds = {row["kind"] for row in rows}
    assert kinds == {"self-play": {"self-play"}, "popularity": {"popularity"}, "both": {"self-play", "popularity"}}[negatives]
    if negatives != "self-play":
        for user in users:
            drawn = [r["rejected_ids"][0] for r in rows if r["user"] == user and r["kind"] == "popularity"]
            assert len(drawn) == len(set(drawn)) == per_prompt


def test_self_play_keeps_only_wrong_top1(prepared_ml100k):
    _, data = prepared_ml100k
    right = {data.sequences[0].user, data.sequences[3].user}
    rows = build_preferences(data, GreedyForFuture(data, right_users=right), "self-play")
    assert {r["user"] for r in rows} == {s.user for s in data.sequences} - right
    # With nothing else masked, the stand-in's next choice is the lowest allowed item id.
    tok = data.tokenizer
    for row in rows:
        ids = _sequence_ids(data)[row["user"]]
        assert row["rejected_ids"][0] == min(i for i in tok.item_range if i not in ids)


def test_popularity_negatives_follow_training_counts(prepared_ml100k):
    _, data = prepared_ml100k
    counts = training_popularity(data)
    expected = {}
    for seq in data.sequences:
        for item in seq.items[:-2]:
            expected[item] = expected.get(item, 0) + 1
    assert dict(counts) == expected
    tok = data.tokenizer
    never = [i for i in data.vocab.items if i not in counts]
    rows = build_preferences(data, None, "popularity", 2, seed=1)
    assert not {tok.item_of(r["rejected_ids"][0]) for r in rows} & set(never)  # count 0: never drawn
    assert rows == build_preferences(data, None, "popularity", 2, seed=1)  # seeded
    assert rows != build_preferences(data, None, "popularity", 2, seed=2)


def test_dpo_trainer_sees_the_sft_token_ids(prepared_ml100k, tmp_path):
    """Through TRL's own dataset preparation and our collator, every sequence the DPOTrainer scores is
    the SFT sequence prompt + answer + [EOS], and only the answer token carries weight."""
    import torch
    from transformers import PreTrainedTokenizerFast

    from lsrec.train.dpo import answer_only_collator, make_trainer, preference_dataset
    from lsrec.train.dpo_config import DPOStageConfig
    from lsrec.models.llama import build_model

    _, data = prepared_ml100k
    tok = data.tokenizer
    rows = build_preferences(data, GreedyForFuture(data), "both", 2, seed=0)
    model = build_model("small", len(data.vocab), seed=0, pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)
    ref = build_model("small", len(data.vocab), seed=0, pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)
    hf_tok = PreTrainedTokenizerFast.from_pretrained(str(data.folder))
    cfg = DPOStageConfig(checkpoint=str(tmp_path / "sft"), batch_size=4)
    collator = answer_only_collator(tok.pad_id, tok.eos_id)
    trainer = make_trainer(cfg, model, ref, hf_tok, preference_dataset(tok, rows), tmp_path / "trainer", 0, collator)
    seen = trainer.train_dataset
    assert len(seen) == len(rows)
    for row, example in zip(rows, seen):
        assert example["prompt_ids"] == row["prompt_ids"]
        assert example["chosen_ids"] == row["chosen_ids"]
        assert example["rejected_ids"] == row["rejected_ids"]
    batch = trainer.data_collator([seen[i] for i in range(4)])
    for i, row in enumerate(rows[:4]):
        for half, answer in ((i, row["chosen_ids"]), (i + 4, row["rejected_ids"])):
            n = len(row["prompt_ids"]) + 2
            assert batch["input_ids"][half, :n].tolist() == row["prompt_ids"] + answer
            weighted = torch.nonzero(batch["completion_mask"][half]).flatten().tolist()
            assert weighted == [len(row["prompt_ids"])]  # the item only, not [EOS]


LSREC_TRAIN = ["--data", "data/tiny", "--preset", "small", "--batch-size", "8", "--eval-batch-size", "16",
               "--no-multitask", "--max-epochs", "2", "--patience", "2", "--name", "sft"]
DPO = ["checkpoints/sft", "--batch-size", "8", "--learning-rate", "5e-3", "--negatives", "both"]


@pytest.fixture(scope="module")
def dpo_workspace(tmp_path_factory):
    from test_cli_end_to_end import prepare_tiny, run

    root = tmp_path_factory.mktemp("dpo")
    prepare_tiny(root)
    run("train", *LSREC_TRAIN, cwd=root)
    return root


def test_sft_then_dpo_then_eval(dpo_workspace):
    from transformers import AutoModelForCausalLM
    from test_cli_end_to_end import run

    root = dpo_workspace
    out = run("dpo", *DPO, "--rounds", "2", "--name", "tiny-dpo", cwd=root).stdout
    assert "round 2: valid NDCG@10" in out
    ckpt = root / "checkpoints" / "tiny-dpo"
    meta = json.loads((ckpt / "lsrec.json").read_text())
    sft_meta = json.loads((root / "checkpoints/sft/lsrec.json").read_text())
    assert meta["stage"] == "dpo" and meta["name"] == "tiny-dpo"
    assert meta["dpo"]["sft_checkpoint"] == "checkpoints/sft" and meta["dpo"]["sft_name"] == "sft"
    assert meta["split"] == sft_meta["split"] and meta["vocabulary"] == sft_meta["vocabulary"]
    assert [r["round"] for r in meta["dpo"]["rounds"]] == [1, 2]
    assert meta["dpo"]["rounds"][1]["reference"].endswith("round-1/checkpoint")
    assert meta["dpo"]["config"]["negatives"] == "both"
    for entry in meta["dpo"]["rounds"]:
        prefs = entry["preferences"]
        lines = (ckpt / prefs["copy"]).read_text().splitlines()
        assert len(lines) == prefs["pairs"] > 0
        assert hashlib.sha256((ckpt / prefs["copy"]).read_bytes()).hexdigest() == prefs["sha256"]
    # It loads as a plain Llama and differs from the SFT weights.
    dpo_model = AutoModelForCausalLM.from_pretrained(ckpt)
    sft_model = AutoModelForCausalLM.from_pretrained(root / "checkpoints/sft")
    config = json.loads((ckpt / "config.json").read_text())
    assert config == json.loads((root / "checkpoints/sft/config.json").read_text())  # attention dropout included
    assert any((a - b).abs().max() > 0 for a, b in zip(dpo_model.parameters(), sft_model.parameters()))

    out = run("eval", str(ckpt), cwd=root).stdout
    assert "PopPct@10" in out and "Gini@10" in out
    result = json.loads((ckpt / "eval_test.json").read_text())
    for key in ("NDCG@10", "Div@10", "PopPct@10", "Gini@10"):
        assert 0.0 <= result["all_users"][key] <= 1.0
    assert result["all_users"]["users"] == 40


@pytest.mark.slow  # three DPO runs: about a minute on a shared CPU
def test_dpo_resumes_by_round_to_the_same_result(dpo_workspace):
    from test_cli_end_to_end import run

    root = dpo_workspace
    run("dpo", *DPO, "--rounds", "1", "--name", "stepwise", cwd=root)
    out = run("dpo", *DPO, "--rounds", "2", "--name", "stepwise", cwd=root).stdout
    assert "round 1:" not in out and "round 2: valid NDCG@10" in out  # round 1 was not run again
    run("dpo", *DPO, "--rounds", "2", "--name", "straight", cwd=root)
    stepwise = json.loads((root / "checkpoints/stepwise/lsrec.json").read_text())["dpo"]["rounds"]
    straight = json.loads((root / "checkpoints/straight/lsrec.json").read_text())["dpo"]["rounds"]
    for a, b in zip(stepwise, straight, strict=True):
        assert a["preferences"]["sha256"] == b["preferences"]["sha256"]
        assert a["valid"]["NDCG@10"] == pytest.approx(b["valid"]["NDCG@10"], abs=1e-6)
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6)
    proc = run("dpo", *DPO, "--rounds", "2", "--beta", "0.5", "--name", "stepwise", cwd=root, check=False)
    assert proc.returncode == 1 and "other settings (beta)" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--rounds", "0"], "rounds must be at least 1"),
    (["--negatives", "random"], "negatives: unknown 'random'"),
    (["--loss-type", "kto"], "loss_type: unknown 'kto'"),
    (["--beta", "0"], "beta must be above 0"),
])
def test_dpo_config_errors_are_one_line(dpo_workspace, args, message):
    from test_cli_end_to_end import run

    proc = run("dpo", "checkpoints/sft", *args, cwd=dpo_workspace, check=False)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_preferences_on_real_ml100k(tmp_path):
    """On the real MovieLens-100K, with a real (untrained) LSRecRanker: no rejected answer is a history,
    training, validation or test item of its user, and the prompt + chosen is the SFT example."""
    from lsrec.bench.lsrec_ranker import LSRecRanker
    from lsrec.tokenizer.dataset import DataConfig, prepare
    from lsrec.models.llama import build_model

    data = prepare(DataConfig(output=str(tmp_path / "ml-100k")))
    tok = data.tokenizer
    model = build_model("medium", len(data.vocab), seed=0, pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)
    rows = build_preferences(data, LSRecRanker(model, tok, batch_size=256), "both", 3, seed=0)
    users = _sequence_ids(data)
    sft = {data.sequences[e["user"]].user: e["input_ids"] for e in build_examples(data, ["RECOMMEND"], False)}
    assert sum(r["kind"] == "popularity" for r in rows) == 3 * len(users)
    assert sum(r["kind"] == "self-play" for r in rows) > 0.9 * len(users)  # an untrained model is mostly wrong
    for row in rows:
        ids = users[row["user"]]
        assert row["rejected_ids"][0] not in ids
        assert row["prompt_ids"] + row["chosen_ids"] == sft[row["user"]]
