"""Multi-task SFT examples (lsrec.train.tasks) and parameter counts (lsrec.models.llama)."""

from __future__ import annotations

import dataclasses

import pytest

from lsrec.tokenizer.dataset import DataConfig, prepare
from lsrec.tokenizer.prompts import CONTEXT_LENGTH
from lsrec.models.llama import count_parameters
from lsrec.train.tasks import IGNORE, available_tasks, build_examples

ALL_TASKS = ["RECOMMEND", "RECOMMEND_GENRE", "RATE_MOVIE", "MOVIE_BY_GENRE", "RECOMMEND_RATING"]
# Written out here (not imported from lsrec.tokenizer.prompts) so that the rule itself is checked.
ANSWER_FAMILY = {"RECOMMEND": "items", "RECOMMEND_GENRE": "genres", "RATE_MOVIE": "ratings",
                 "MOVIE_BY_GENRE": "items", "RECOMMEND_RATING": "items"}


def _per_user(data, tasks=ALL_TASKS, **kw):
    """user -> {task: example}, built one user at a time so every example's owner is known."""
    out = {}
    for seq in data.sequences:
        examples = build_examples(dataclasses.replace(data, sequences=[seq]), tasks, **kw)
        assert len(examples) == len(tasks), seq.user  # every fixture item has genres and a rating
        out[seq.user] = dict(zip(tasks, examples))
    return out


def _task_of(tok, example):
    return tok.id_to_token[example["input_ids"][2]].strip("[]")


def test_available_tasks(prepared_ml100k, tmp_path):
    _, data = prepared_ml100k
    assert available_tasks(data) == ALL_TASKS
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp\n" + "".join(f"1,{k},{k}\n" for k in range(6)))
    plain = prepare(DataConfig(source=str(inter), output=str(tmp_path / "plain")))
    assert available_tasks(plain) == ["RECOMMEND"]
    assert len(build_examples(plain, ALL_TASKS, all_positions=False)) == 1  # the others are skipped


def test_examples_in_task_order_per_user(prepared_ml100k):
    _, data = prepared_ml100k
    tok = data.tokenizer
    examples = build_examples(data, ALL_TASKS, all_positions=False)
    assert len(examples) == 5 * len(data.sequences)
    assert [_task_of(tok, e) for e in examples[:10]] == ALL_TASKS * 2


@pytest.mark.parametrize("all_positions", [False, True])
def test_validation_and_test_targets_never_in_training_inputs(prepared_ml100k, all_positions):
    synthetic, data = prepared_ml100k
    tok = data.tokenizer
    expected = synthetic.expected_sequences()
    for user, by_task in _per_user(data, all_positions=all_positions).items():
        items, _ = expected[user]
        assert len(set(items)) == len(items)  # the fixture never repeats an item within a user
        hidden = {tok.item_id(items[-1]), tok.item_id(items[-2])}
        for task, example in by_task.items():
            assert not hidden & set(example["input_ids"]), (user, task)
            assert not hidden & set(example["labels"]), (user, task)


def test_recommend_example_layout(prepared_ml100k):
    synthetic, data = prepared_ml100k
    tok = data.tokenizer
    expected = synthetic.expected_sequences()
    for user, by_task in _per_user(data, all_positions=False).items():
        items, _ = expected[user]
        ex = by_task["RECOMMEND"]
        history = [tok.item_id(i) for i in items[:-3]]
        target = tok.item_id(items[-3])
        assert ex["input_ids"] == [1, 3, tok.task_id("RECOMMEND"), 4, *history, 5, target, 2]
        assert ex["labels"] == [IGNORE] * (len(history) + 5) + [target, IGNORE]


def test_target_only_labels(prepared_ml100k):
    _, data = prepared_ml100k
    for by_task in _per_user(data, all_positions=False).values():
        for task, ex in by_task.items():
            ids, labels = ex["input_ids"], ex["labels"]
            assert len(ids) == len(labels)
            assert ids[-1] == data.tokenizer.eos_id and ids[-3] == data.tokenizer.start_id
            assert labels[-2] == ids[-2]
            assert [i for i, label in enumerate(labels) if label != IGNORE] == [len(ids) - 2], task


def test_all_positions_labels_history_items_2_to_n(prepared_ml100k):
    synthetic, data = prepared_ml100k
    tok = data.tokenizer
    expected = synthetic.expected_sequences()
    for user, by_task in _per_user(data, all_positions=True).items():
        items, _ = expected[user]
        ex = by_task["RECOMMEND"]
        history = [tok.item_id(i) for i in items[:-3]]
        n = len(history)
        target = tok.item_id(items[-3])
        #          [BOS]   [TASK]  [RECOMMEND] [ARGUMENTS] item_1  items 2..n   [START]  answer  [EOS]
        assert ex["labels"] == [IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, *history[1:], IGNORE, target, IGNORE]
        assert sum(label != IGNORE for label in ex["labels"]) == n  # (n - 1) history items + answer
        # The auxiliary tasks stay target-only.
        for task in ALL_TASKS[1:]:
            labels = by_task[task]["labels"]
            assert [i for i, label in enumerate(labels) if label != IGNORE] == [len(labels) - 2], task


def test_each_task_answers_from_its_family(prepared_ml100k):
    synthetic, data = prepared_ml100k
    tok = data.tokenizer
    fam = data.vocab.families
    expected = synthetic.expected_sequences()
    for user, by_task in _per_user(data, all_positions=False).items():
        items, ratings = expected[user]
        target, rating = items[-3], ratings[-3]
        first_genre = synthetic.genres[int(target)][0]
        for task, ex in by_task.items():
            assert _task_of(tok, ex) == task
            answer = ex["input_ids"][-2]
            start, end = fam[ANSWER_FAMILY[task]]
            assert start <= answer < end, (user, task)
        ids = {task: ex["input_ids"] for task, ex in by_task.items()}
        assert ids["RECOMMEND"][-2] == tok.item_id(target)
        assert ids["RECOMMEND_GENRE"][-2] == tok.genre_id(first_genre)
        assert ids["RATE_MOVIE"][-2] == tok.rating_id(rating)
        assert ids["RATE_MOVIE"][-4] == tok.item_id(target)  # the movie to rate is the argument
        assert ids["MOVIE_BY_GENRE"][-2] == tok.item_id(target)
        assert ids["MOVIE_BY_GENRE"][-4] == tok.genre_id(first_genre)
        assert ids["RECOMMEND_RATING"][-2] == tok.item_id(target)
        assert ids["RECOMMEND_RATING"][-4] == tok.rating_id(rating)
        history = [tok.item_id(i) for i in items[:-3]]
        assert ids["RECOMMEND_GENRE"][4:-3] == history
        assert ids["RATE_MOVIE"][4:-4] == history


def test_aux_history_truncates_only_auxiliary_tasks(prepared_ml100k):
    synthetic, data = prepared_ml100k
    tok = data.tokenizer
    expected = synthetic.expected_sequences()
    for user, by_task in _per_user(data, all_positions=False, aux_history=2).items():
        items, _ = expected[user]
        history = [tok.item_id(i) for i in items[:-3]]
        assert by_task["RECOMMEND"]["input_ids"][4:-3] == history
        assert by_task["RECOMMEND_GENRE"]["input_ids"][4:-3] == history[-2:]
        assert by_task["MOVIE_BY_GENRE"]["input_ids"][4:-4] == history[-2:]


def test_long_history_fits_the_context(tmp_path):
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp,rating\n" + "".join(f"1,{k},{k},{k % 5 + 1}\n" for k in range(300)))
    items = tmp_path / "items.csv"
    items.write_text("item,title,genres\n" + "".join(f"{k},T{k},Drama\n" for k in range(300)))
    data = prepare(DataConfig(source=str(inter), items=str(items), output=str(tmp_path / "long")))
    tok = data.tokenizer
    examples = build_examples(data, ALL_TASKS, all_positions=True)
    assert len(examples) == 5
    for ex in examples:
        assert len(ex["input_ids"]) == len(ex["labels"]) == CONTEXT_LENGTH
    rec = examples[0]
    assert rec["input_ids"][-2] == tok.item_id("297")
    assert rec["input_ids"][4:-3] == [tok.item_id(str(k)) for k in range(297 - 193, 297)]  # most recent kept
    assert sum(label != IGNORE for label in rec["labels"]) == 193


# --------------------------------------------------------------------------------------- presets


@pytest.mark.parametrize("preset, paper", [("small", 768_300), ("medium", 2_200_000)])
def test_parameter_counts_match_paper(preset, paper):
    n = count_parameters(preset, 10_722)
    assert abs(n - paper) / paper < 0.05, n


def test_parameter_count_ties_embeddings():
    # small: hidden 64; one more token adds one 64-wide embedding row, counted once (tied output).
    assert count_parameters("small", 1001) - count_parameters("small", 1000) == 64


def test_sampled_auxiliary_tasks_draw_one_task_per_user_and_vary(prepared_ml100k):
    import torch

    from lsrec.train.tasks import SampledAuxiliaryTasks

    _, data = prepared_ml100k
    examples = build_examples(data, ALL_TASKS, all_positions=True, aux_history=5)
    sampled = SampledAuxiliaryTasks(examples)
    n_users = len(data.sequences)
    assert len(sampled) == 2 * n_users
    dataset = sampled.as_dataset()
    torch.manual_seed(0)
    recommend_rows = [dataset[i] for i in range(n_users)]
    assert all(_task_of(data.tokenizer, row) == "RECOMMEND" for row in recommend_rows)
    drawn = {(i, _task_of(data.tokenizer, dataset[i])) for _ in range(30) for i in range(n_users, 2 * n_users)}
    tasks = {task for _, task in drawn}
    assert tasks == set(ALL_TASKS) - {"RECOMMEND"}  # all four auxiliary tasks get drawn
    assert len({task for i, task in drawn if i == n_users}) > 1  # the same row varies between reads
    # the draw is seeded: the same seed gives the same examples
    torch.manual_seed(1)
    first = [dataset[i]["input_ids"] for i in range(n_users, 2 * n_users)]
    torch.manual_seed(1)
    assert first == [dataset[i]["input_ids"] for i in range(n_users, 2 * n_users)]
    # an auxiliary row reports its user's RECOMMEND length, so the sampler batches it beside RECOMMEND rows
    recommend_lengths = [len(e["input_ids"]) for e in sampled.recommend]
    assert dataset["length"] == recommend_lengths + recommend_lengths


def test_training_dropout_is_off_at_inference():
    import torch

    from lsrec.models.llama import build_model
    from lsrec.train.trainer import add_training_dropout

    # no attention dropout, so any difference in training mode comes from the hooks
    plain = build_model("small", 50, seed=0, attention_dropout=0.0)
    hooked = build_model("small", 50, seed=0, attention_dropout=0.0)
    add_training_dropout(hooked, 0.5)
    ids = torch.randint(0, 50, (2, 12))
    plain.eval(), hooked.eval()
    assert torch.equal(plain(input_ids=ids).logits, hooked(input_ids=ids).logits)
    hooked.train(), plain.train()
    assert not torch.allclose(plain(input_ids=ids).logits, hooked(input_ids=ids).logits)


def test_fast_dropout_keeps_the_dropout_distribution_and_gradient():
    import torch

    from lsrec.train.trainer import fast_dropout

    torch.manual_seed(0)
    x = torch.full((400, 500), 2.0, requires_grad=True)
    y = fast_dropout(x, 0.2)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.005  # 200k draws: the standard error is 0.0009
    assert torch.allclose(y[kept], torch.tensor(2.0 / 0.8))  # kept values scaled by 1 / (1 - p)
    assert abs(y.mean().item() - 2.0) < 0.02  # unbiased
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() / 0.8)  # the gradient flows through kept elements only


def test_xavier_init_gives_every_matrix_the_xavier_scale():
    import math

    import torch

    from lsrec.models.llama import build_model

    normal = build_model("medium", 500, seed=0)
    xavier = build_model("medium", 500, seed=0, init="xavier")
    assert xavier.lm_head.weight is xavier.model.embed_tokens.weight  # still tied, still plain Llama
    for (name, a), (_, b) in zip(normal.named_parameters(), xavier.named_parameters()):
        a, b = a.detach(), b.detach()
        if a.dim() < 2:
            assert torch.equal(a, b), name  # norms keep their ones
            continue
        fan_out, fan_in = a.shape
        expected = math.sqrt(2.0 / (fan_in + fan_out))
        assert abs(float(b.std()) - expected) < 0.1 * expected, name
        assert abs(float(a.std()) - 0.02) < 0.002, name  # transformers' default, initializer_range 0.02


def test_unknown_init_is_refused():
    from lsrec.tokenizer.errors import LSRecError
    from lsrec.train.config import TrainConfig

    with pytest.raises(LSRecError, match="init: unknown 'he'"):
        TrainConfig(init="he")
    with pytest.raises(LSRecError, match="adam_beta2"):
        TrainConfig(adam_beta2=1.0)


@pytest.mark.parametrize("layout", ["task-first", "history-first"])
def test_every_start_copy_sees_exactly_the_prompt_of_its_cut(prepared_ml100k, layout):
    """Each [START] of a start_copies row scores like a lone [START] after its first k items."""
    import torch

    from lsrec.tokenizer.prompts import prompt_frame, prompt_ids
    from lsrec.tokenizer.vocab import ItemTokenizer
    from lsrec.models.llama import build_model
    from lsrec.train.tasks import copy_group, start_attention, start_copies

    _, data = prepared_ml100k
    tok = ItemTokenizer(data.vocab, layout)
    group = len(copy_group(tok))
    assert group == {"task-first": 1, "history-first": 3}[layout]
    model = build_model("small", len(data.vocab), seed=0, pad_id=tok.pad_id).eval()
    examples = build_examples(data, ["RECOMMEND", "RECOMMEND_RATING"], all_positions=True, tok=tok)
    recommend, auxiliary = examples[0], examples[1]
    n_prefix = len(prompt_frame(tok, "RECOMMEND")[0])
    n_history = len(recommend["input_ids"]) - n_prefix - group - 2
    history = recommend["input_ids"][n_prefix:n_prefix + n_history]
    assert all(i in tok.item_range for i in history)
    sequence = history + [recommend["input_ids"][-2]]
    for copies in (1, 3, 500):
        row = start_copies(recommend, tok, copies)
        m = min(copies, n_history)
        assert row["input_ids"].count(tok.start_id) == m
        if copies == 1:  # one copy is the example itself
            assert (row["input_ids"], row["labels"]) == (recommend["input_ids"], recommend["labels"])
        # the copy for cut k answers the (k+1)-th item; the item positions keep their labels
        starts = [i for i, t in enumerate(row["input_ids"]) if t == tok.start_id]
        assert [row["labels"][i + 1] for i in starts] == sequence[n_history - m + 1:]
        assert row["labels"][:n_prefix + n_history] == recommend["labels"][:n_prefix + n_history]
        assert sum(label != -100 for label in row["labels"][n_prefix + n_history:]) == m

        # a batch of the long row and a padded auxiliary row, as the collator gives it
        width = max(len(row["input_ids"]), len(auxiliary["input_ids"]))
        batch = torch.full((2, width), tok.pad_id)
        batch[0, :len(row["input_ids"])] = torch.tensor(row["input_ids"])
        batch[1, :len(auxiliary["input_ids"])] = torch.tensor(auxiliary["input_ids"])
        mask, positions = start_attention(batch, tok.start_id, torch.float32, group=group)
        with torch.no_grad():
            logits = model(input_ids=batch, attention_mask=mask, position_ids=positions).logits
            for j in {0, m // 2, m - 1}:
                k = n_history - m + 1 + j  # items seen by the j-th copy
                alone = torch.tensor([prompt_ids(tok, "RECOMMEND", history[:k])])
                expected = model(input_ids=alone).logits[0]
                # every token of the copy, not only its [START], is the lone prompt's
                got = logits[0, starts[j] - group + 1:starts[j] + 1]
                torch.testing.assert_close(got, expected[-group:], atol=1e-4, rtol=1e-4)
            # a row with one [START] is plain causal attention
            aux_len = len(auxiliary["input_ids"])
            plain = model(input_ids=batch[1:, :aux_len]).logits[0]
            torch.testing.assert_close(logits[1, :aux_len], plain, atol=1e-4, rtol=1e-4)


def test_start_copies_must_not_be_negative():
    from lsrec.tokenizer.errors import LSRecError
    from lsrec.train.config import TrainConfig

    with pytest.raises(LSRecError, match="start_copies must be"):
        TrainConfig(start_copies=-1)


@pytest.mark.parametrize("layout", ["task-first", "history-first"])
def test_collator_weighs_labels_by_the_task_in_either_layout(prepared_ml100k, layout):
    """aux_weight falls on the auxiliary tasks' labels, RECOMMEND's keep weight 1, wherever the layout
    puts the task token (and with [START] copies repeating it)."""
    from lsrec.tokenizer.vocab import ItemTokenizer
    from lsrec.train.tasks import PackedCollator, start_copies

    _, data = prepared_ml100k
    tok = ItemTokenizer(data.vocab, layout)
    examples = build_examples(data, list(ALL_TASKS), all_positions=True, tok=tok)[:10]
    examples = [start_copies(e, tok, 4) if e["task"] == "RECOMMEND" else e for e in examples]
    batch = PackedCollator(tok.pad_id, tok.task_id("RECOMMEND"), tok.task_marker_id, aux_weight=0.25,
                           pack=False)(examples)
    for row, example in enumerate(examples):
        labelled = batch["labels"][row] != IGNORE
        expected = 1.0 if example["task"] == "RECOMMEND" else 0.25
        assert set(batch["label_weights"][row][labelled].tolist()) == {expected}, example["task"]
