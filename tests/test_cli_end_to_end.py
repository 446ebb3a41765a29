"""The whole flow through the `lsrec` command on tiny synthetic data: prepare -> train -> eval ->
recommend, resume after an interruption, and one-line errors."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LSREC = [sys.executable, "-m", "lsrec.cli"]
GENRES = ["Action", "Comedy", "Drama", "Sci-Fi"]


def run(*args, cwd, check=True):
    proc = subprocess.run([*LSREC, *args], cwd=cwd, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "LSREC_DEBUG": ""})
    if check and proc.returncode != 0:
        raise AssertionError(f"lsrec {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_synthetic(folder: Path, users=40, items=60, seed=0) -> tuple[Path, Path]:
    """Users walk through item 'neighbourhoods', so there is something to learn."""
    rng = random.Random(seed)
    rows, t = ["user,item,timestamp,rating"], 1_000_000
    for u in range(1, users + 1):
        pos = rng.randrange(items)
        for _ in range(rng.randint(8, 25)):
            pos = (pos + rng.choice([1, 1, 2, 3])) % items
            t += rng.randint(1, 50)
            rows.append(f"{u},{pos + 1},{t},{rng.randint(1, 5)}")
    inter = folder / "inter.csv"
    inter.write_text("\n".join(rows) + "\n")
    meta = folder / "items.csv"
    meta.write_text("item,title,genres\n" + "".join(
        f"{i},Movie {i} ({1990 + i % 20}),{GENRES[i % 4]}|{GENRES[(i + 1) % 4]}\n" for i in range(1, items + 1)))
    return inter, meta


def prepare_tiny(root):
    """The synthetic data set prepared into root/data/tiny, as the tests' runs read it."""
    inter, meta = write_synthetic(root)
    run("data", "prepare", str(inter), "--items", str(meta), "-o", "data/tiny", cwd=root)
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return prepare_tiny(tmp_path_factory.mktemp("e2e"))


TRAIN = ["--data", "data/tiny", "--preset", "small", "--batch-size", "8", "--eval-batch-size", "16"]


def test_help_does_not_import_torch():
    code = "import sys, lsrec.cli.app; assert 'torch' not in sys.modules, 'torch imported at --help time'"
    subprocess.run([sys.executable, "-c", code], check=True)
    proc = subprocess.run([*LSREC, "--help"], capture_output=True, text=True, check=True)
    for command in ("data", "train", "eval", "recommend"):
        assert command in proc.stdout


def test_train_help_shows_every_recipe_as_it_runs():
    """The --recipe help is written from RECIPES, so each recipe shows the values it sets."""
    from lsrec.train.config import DEFAULT_RECIPE, RECIPES

    proc = subprocess.run([*LSREC, "train", "--help"], capture_output=True, text=True, check=True,
                          env={**os.environ, "COLUMNS": "1000"})
    help_text = " ".join(proc.stdout.replace("│", " ").split())
    for name, values in RECIPES.items():
        listed = help_text.split(f"{name} (", 1)[1].split(")", 1)[0]
        for field_name, value in values.items():
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            assert f"{field_name.replace('_', '-')} {shown}" in listed, (name, field_name)
    assert f"[default: {DEFAULT_RECIPE}]" in help_text


def test_train_help_shows_the_values_a_run_uses():
    """Without --recipe, a run takes the TrainConfig defaults, and those are what each flag's help shows."""
    import dataclasses

    from lsrec.train.config import DEFAULT_RECIPE, RECIPES, TrainConfig

    assert RECIPES[DEFAULT_RECIPE] == {}
    proc = subprocess.run([*LSREC, "train", "--help"], capture_output=True, text=True, check=True,
                          env={**os.environ, "COLUMNS": "1000"})
    lines = {line.replace("│", " ").split()[0]: line for line in proc.stdout.splitlines()
             if line.replace("│", " ").strip().startswith("--")}
    for f in dataclasses.fields(TrainConfig):
        shown = {True: "on", False: "off"}[f.default] if isinstance(f.default, bool) else f.default
        assert f"[default: {shown}]" in lines["--" + f.name.replace("_", "-")], (f.name, shown)


def test_train_eval_recommend(workspace):
    proc = run("train", *TRAIN, "--multitask", "--max-epochs", "3", "--patience", "3", "--name", "tiny-mt",
               cwd=workspace)
    assert "valid NDCG@10" in proc.stdout
    ckpt = workspace / "checkpoints" / "tiny-mt"
    assert proc.stdout.strip().splitlines()[-1] == "checkpoints/tiny-mt"  # what `lsrec serve` takes
    meta = json.loads((ckpt / "lsrec.json").read_text())
    assert meta["tasks"] == ["RECOMMEND", "RECOMMEND_GENRE", "RATE_MOVIE", "MOVIE_BY_GENRE", "RECOMMEND_RATING"]
    assert [h["epoch"] for h in meta["history"]][:1] == [1]
    assert meta["split"]["sha256"] == json.loads((workspace / "data/tiny/manifest.json").read_text())["sha256"]

    # A plain Hugging Face load works on the folder.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(ckpt)
    tok = AutoTokenizer.from_pretrained(ckpt)
    assert model.config.tie_word_embeddings and model.config.vocab_size == len(tok)

    run("eval", str(ckpt), cwd=workspace)
    result = json.loads((ckpt / "eval_test.json").read_text())
    for key in ("HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "Div@1", "Div@5", "Div@10", "Div@20"):
        assert 0.0 <= result["all_users"][key] <= 1.0
    assert set(result["sampled_users"]) == {"NDCG@5", "HR@5", "Div@5", "users"}
    assert result["all_users"]["users"] == 40

    out = run("recommend", str(ckpt), "--items", "3,4,5", "-k", "4", cwd=workspace).stdout
    assert "Movie " in out and out.count("│") > 0
    assert "Movie 3 " not in out  # history items are never recommended
    out = run("recommend", str(ckpt), "--user", "1", "-k", "3", cwd=workspace).stdout
    assert "held-out next movie" in out
    out = run("recommend", str(ckpt), "--items", "3,4", "--task", "RECOMMEND_GENRE", "-k", "2", cwd=workspace).stdout
    assert any(g in out for g in GENRES)

    pop = run("eval", "--baseline", "popularity", "--data", "data/tiny", "--json", "pop.json", cwd=workspace)
    assert "popularity" in pop.stdout and (workspace / "pop.json").is_file()


def test_sasrec_recipe_reaches_the_optimizer(workspace):
    """`--recipe sasrec` fills the fields the user did not give, and the trainer runs with them."""
    import torch

    run("train", *TRAIN, "--no-multitask", "--recipe", "sasrec", "--max-epochs", "1", "--batch-size", "16",
        "--name", "tiny-sasrec-recipe", cwd=workspace)
    saved = json.loads((workspace / "checkpoints/tiny-sasrec-recipe/lsrec.json").read_text())["train_config"]
    assert (saved["init"], saved["adam_beta2"], saved["learning_rate"], saved["lr_scheduler"]) == ("xavier", 0.98, 1e-3, "constant")
    assert saved["batch_size"] == 16 and saved["max_epochs"] == 1  # what the user gave wins over the recipe
    args = torch.load(next((workspace / "runs/tiny-sasrec-recipe").glob("checkpoint-*")) / "training_args.bin",
                      weights_only=False)
    assert (args.adam_beta2, args.learning_rate, args.weight_decay) == (0.98, 1e-3, 0.0)
    assert args.gradient_checkpointing is False  # TRL's default recomputes every forward: a third of a step
    assert getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type) == "constant"


def test_copies_recipe_trains_through_the_cli(workspace):
    """`--recipe copies` sets [START] copies and the cosine decay, and runs the trainer's masked path
    to a checkpoint that ranks like any other."""
    run("train", *TRAIN, "--multitask", "--recipe", "copies", "--max-epochs", "1", "--batch-size", "16",
        "--name", "tiny-copies", cwd=workspace)
    ckpt = workspace / "checkpoints/tiny-copies"
    saved = json.loads((ckpt / "lsrec.json").read_text())["train_config"]
    assert (saved["start_copies"], saved["lr_scheduler"], saved["init"]) == (32, "cosine", "xavier")
    from lsrec.tokenizer.vocab import DEFAULT_LAYOUT
    assert json.loads((ckpt / "lsrec.json").read_text())["prompt_layout"] == saved["prompt_layout"] == DEFAULT_LAYOUT
    run("eval", str(ckpt), cwd=workspace)
    assert 0.0 <= json.loads((ckpt / "eval_test.json").read_text())["all_users"]["NDCG@10"] <= 1.0


@pytest.mark.parametrize("layout", ["history-first", "task-first"])
def test_each_prompt_layout_trains_ranks_and_recommends(workspace, layout):
    """A checkpoint records its prompt layout; evaluation and `lsrec recommend` build its prompts in it."""
    from lsrec.bench.lsrec_ranker import OfflineRecommender
    from lsrec.tokenizer.prompts import parse_prompt

    name = f"tiny-{layout}"
    run("train", *TRAIN, "--multitask", "--prompt-layout", layout, "--max-epochs", "1", "--name", name, cwd=workspace)
    ckpt = workspace / "checkpoints" / name
    meta = json.loads((ckpt / "lsrec.json").read_text())
    assert meta["prompt_layout"] == meta["train_config"]["prompt_layout"] == layout
    run("eval", str(ckpt), cwd=workspace)
    valid = json.loads((ckpt / "eval_test.json").read_text())
    assert 0.0 <= valid["all_users"]["NDCG@10"] <= 1.0
    # the auxiliary tasks it was trained on are measured too, each beside its baseline
    assert len(meta["tasks"]) == 5 and set(valid["aux_tasks"]) == set(meta["tasks"]) - {"RECOMMEND"}
    assert 0.0 <= valid["aux_tasks"]["MOVIE_BY_GENRE"]["genre_precision@10"] <= 1.0
    recommender = OfflineRecommender(ckpt)
    assert recommender.tok.layout == layout
    history = recommender.tok.vocab.items[:5]
    top = recommender.recommend(history, k=5)
    assert len(top) == 5 and not {r.item for r in top} & set(history)
    # the prompt it ranked reads in the checkpoint's layout
    [row] = recommender.ranker.rank_ids([parse_prompt(recommender.tok, " ".join(
        ["[BOS]", *[f"item_{i}" for i in history], "[TASK]", "[RECOMMEND]", "[START]"])).ids], [[]], 5)
    assert [recommender.tok.item_of(t) for t, _ in row] == [r.item for r in top]
    # a MOVIE_BY_GENRE answer kept to its genre
    genre = recommender.meta.catalogue[history[0]]["genres"][0]
    kept = recommender.recommend(history, k=5, task="MOVIE_BY_GENRE", genre=genre, genre_only=True)
    assert kept and all(genre in recommender.meta.catalogue[r.item]["genres"] for r in kept)


def test_train_speed_times_real_steps(workspace):
    """`lsrec train-speed` takes `lsrec train`'s flags, times the steps asked for and reports tokens/s,
    FLOPs per token and the matmul rates it measured before and after them."""
    proc = run("train-speed", *TRAIN, "--multitask", "--batch-size", "8", "--steps", "2", "-o", "speed.json",
               cwd=workspace)
    result = json.loads((workspace / "speed.json").read_text())
    assert result["steps"] == 2 and result["config"]["batch_size"] == 8 and result["config"]["preset"] == "small"
    assert result["tokens_per_s"] == pytest.approx(result["tokens"] / result["seconds"], rel=0.01)
    assert 0 <= result["padding_share"] < 1 and result["flops_per_token"] > 0
    for name, (before, after) in result["matmul_readings"].items():  # read around the steps, averaged
        assert before > 0 and after > 0
        assert result["matmul_flops_per_s"][name] == pytest.approx((before + after) / 2)
    assert "training tokens/s" in proc.stdout


def test_profile_step_shows_where_a_training_step_goes(workspace):
    """scripts/profile_step.py profiles `lsrec train`'s own loss and backward on the run's batches."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "profile_step.py"
    proc = subprocess.run([sys.executable, str(script), "--steps", "2", "data='data/tiny'", "preset='small'",
                           "batch_size=8", "attention_dropout=0"], cwd=workspace, capture_output=True, text=True,
                          check=True, timeout=600)
    assert "2 steps (rows x width" in proc.stdout and "'attention_dropout': 0" in proc.stdout
    assert "aten::mm" in proc.stdout and "Self CPU time total" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["recommend", "checkpoints/tiny-mt", "--items", "3,99999"], "unknown item id '99999'"),
    (["recommend", "checkpoints/tiny-mt", "--items", "3", "--task", "MOVIE_BY_GENRE", "--genre", "Western"], "unknown genre 'Western'"),
    (["eval", "checkpoints/nope"], "no such checkpoint folder"),
    (["train", "--data", "data/tiny", "--preset", "huge"], "preset"),
    (["train", "--data", "data/missing"], "not a prepared dataset"),
    (["data", "prepare", "nowhere.csv", "-o", "data/x"], "no such file"),
])
def test_errors_are_one_line(workspace, args, message):
    if args[0] == "recommend" and not (workspace / "checkpoints/tiny-mt").exists():
        pytest.skip("needs the checkpoint of test_train_eval_recommend")
    proc = run(*args, cwd=workspace, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


def test_killed_run_resumes_to_the_same_result(workspace):
    """Kill a run after its second epoch checkpoint; starting it again finishes it, and the result
    equals an uninterrupted run with the same seed."""
    args = [*TRAIN, "--no-multitask", "--max-epochs", "4", "--patience", "4"]
    run("train", *args, "--name", "straight", cwd=workspace)
    proc = subprocess.Popen([*LSREC, "train", *args, "--name", "killed"], cwd=workspace,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = workspace / "runs" / "killed" / "early_stopping.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        checkpoints = list((workspace / "runs" / "killed").glob("checkpoint-*"))
        if state.is_file() and checkpoints and len(json.loads(state.read_text() or "[]")) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = run("train", *args, "--name", "killed", cwd=workspace).stdout
    assert "resuming from" in out
    straight = json.loads((workspace / "checkpoints/straight/lsrec.json").read_text())["history"]
    resumed = json.loads((workspace / "checkpoints/killed/lsrec.json").read_text())["history"]
    assert [h["epoch"] for h in resumed] == [h["epoch"] for h in straight]
    for a, b in zip(straight, resumed):
        assert a["valid"]["NDCG@10"] == pytest.approx(b["valid"]["NDCG@10"], abs=1e-6)
