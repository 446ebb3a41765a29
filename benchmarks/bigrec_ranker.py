"""Rank items with a BigRec checkpoint: generate the next title, ground it to the catalogue.

Grounding as BigRec's code does it: the generated answer and every catalogue title are embedded by the
tuned LM (last layer, last token) and items are ranked by L2 distance to the answer. The user's history
is masked like every other ranker's, and the metrics come from the one evaluate_protocols().
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from lsrec.models.plm import load_bigrec, prompt_text
from lsrec.tokenizer import dataset as prepared
from lsrec.tokenizer.checkpoint import data_for_checkpoint
from lsrec.tokenizer.dataset import split_cases

from .evaluate import evaluate_protocols


def clean_answer(text: str) -> str:
    """The first line of the generated text, without the quotes the prompt format puts around titles."""
    lines = text.strip().splitlines()
    return lines[0].strip().strip('"').strip() if lines else ""


class BigRecRanker:
    """rank() returns (item, -L2 distance) best first, history excluded. Generation depends only on the
    last `history_length` items, so answers are cached by them (evaluate_protocols ranks the sampled
    users again; on ML-100K they are the same users)."""

    def __init__(self, model, tokenizer, data: prepared.PreparedData, history_length: int = 10,
                 max_new_tokens: int = 32, num_beams: int = 1, batch_size: int = 16, progress: bool = True):
        self.model, self.tokenizer, self.data = model, tokenizer, data
        self.history_length, self.max_new_tokens, self.num_beams = history_length, max_new_tokens, num_beams
        self.batch_size, self.progress = batch_size, progress
        self.items = list(data.vocab.items)
        self.index = {item: n for n, item in enumerate(self.items)}
        self.titles = [data.catalogue.get(i, {}).get("title", f"item {i}") for i in self.items]
        self.answers: dict[tuple, str] = {}  # last history items -> cleaned generated answer
        self._answer_vectors: dict[tuple, torch.Tensor] = {}
        self.generate_seconds = 0.0
        started = time.time()
        self.item_vectors = self.embed(self.titles, "embedding catalogue titles")
        self.catalogue_seconds = time.time() - started

    def _batches(self, n: int, what: str):
        starts = range(0, n, self.batch_size)
        if not self.progress:
            return starts
        from tqdm.auto import tqdm

        return tqdm(starts, desc=what, unit="batch")

    @torch.inference_mode()
    def embed(self, texts: list[str], what: str = "embedding") -> torch.Tensor:
        """Last layer, last token of each text (right padding, so positions are those of the text alone)."""
        tok = self.tokenizer
        encoded = [tok(t, add_special_tokens=False)["input_ids"] or [tok.eos_token_id] for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))  # similar lengths batch together
        out = torch.empty(len(texts), self.model.config.hidden_size)
        device = next(self.model.parameters()).device
        for start in self._batches(len(order), what):
            idx = order[start:start + self.batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, :len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, :len(encoded[i])] = 1
            # hidden_states[-1] is the (normed) last layer; logits_to_keep=1 spares the LM head over all positions.
            hidden = self.model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True,
                                logits_to_keep=1).hidden_states[-1]
            last = hidden[torch.arange(len(idx)), (mask.sum(1) - 1).to(device)]
            out[idx] = last.float().cpu()
        return out

    @torch.inference_mode()
    def generate(self, prompts: list[str]) -> list[str]:
        tok = self.tokenizer
        tok.padding_side = "left"  # generation continues every row from its own last token
        texts = []
        device = next(self.model.parameters()).device
        for start in self._batches(len(prompts), "generating answers"):
            batch = tok(prompts[start:start + self.batch_size], return_tensors="pt", padding=True).to(device)
            out = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      num_beams=self.num_beams, pad_token_id=tok.pad_token_id)
            texts += tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        return [clean_answer(t) for t in texts]

    def _keys(self, histories: list[list[str]]) -> list[tuple]:
        return [tuple(h[-self.history_length:]) for h in histories]

    def ensure_answers(self, histories: list[list[str]]) -> None:
        new = list(dict.fromkeys(k for k in self._keys(histories) if k not in self.answers))
        if not new:
            return
        started = time.time()
        answers = self.generate([prompt_text([self.titles[self.index[i]] for i in key]) for key in new])
        self.generate_seconds += time.time() - started
        vectors = self.embed(answers, "embedding answers")
        for key, answer, vector in zip(new, answers, vectors):
            self.answers[key] = answer
            self._answer_vectors[key] = vector

    def rank(self, histories: list[list[str]], k: int) -> list[list[tuple[str, float]]]:
        self.ensure_answers(histories)
        keys = self._keys(histories)
        answers = torch.stack([self._answer_vectors[key] for key in keys])
        distance = torch.cdist(answers, self.item_vectors)  # BigRec: L2 in the LM's own space
        for row, history in enumerate(histories):
            seen = [self.index[i] for i in history if i in self.index]
            distance[row, seen] = float("inf")
        top = torch.topk(distance, min(k, distance.shape[1]), dim=1, largest=False)
        return [[(self.items[j], -float(d)) for j, d in zip(ids.tolist(), dists) if d != float("inf")]
                for ids, dists in zip(top.indices, top.values)]

    def exact_match_rate(self, histories: list[list[str]]) -> float:
        """Share of generated answers that are exactly a catalogue title."""
        self.ensure_answers(histories)
        titles = set(self.titles)
        keys = self._keys(histories)
        return sum(self.answers[key] in titles for key in keys) / max(len(keys), 1)


def evaluate_bigrec(folder: str | Path, data_dir: str | None = None, split: str = "test", sample_size: int = 1000,
                    seed: int = 0, batch_size: int = 16, num_beams: int | None = None, log=print) -> dict:
    """Both protocols (all users, Table 3; seeded sample at K=5, Table 4) plus grounding statistics."""
    started = time.time()
    model, tokenizer, meta = load_bigrec(folder)
    data = data_for_checkpoint(folder, data_dir)
    cfg = meta.raw["train_config"]
    ranker = BigRecRanker(model, tokenizer, data, cfg["history_length"], cfg["max_new_tokens"],
                          num_beams or cfg["num_beams"], batch_size)
    load_seconds = time.time() - started
    results = evaluate_protocols(ranker, data, split, sample_size, seed)
    cases = split_cases(data, split)
    histories = [c.history for c in cases]
    exact = ranker.exact_match_rate(histories)
    keys = ranker._keys(histories)
    examples = [{"user": c.user, "generated": ranker.answers[key],
                 "target": data.catalogue.get(c.target, {}).get("title", c.target)}
                for c, key in list(zip(cases, keys))[:10]]
    log(f"{len(ranker.answers)} answers generated in {ranker.generate_seconds:.0f} s; "
        f"{exact:.1%} are exactly a catalogue title")
    return {
        "model": meta.raw["name"], "checkpoint": str(folder), "split": split, "ranked_by": "in-process",
        "split_sha256": data.split_hash, "eval_seconds": round(time.time() - started, 1),
        "timing": {"load_seconds": round(load_seconds - ranker.catalogue_seconds, 1),
                   "catalogue_embedding_seconds": round(ranker.catalogue_seconds, 1),
                   "generation_seconds": round(ranker.generate_seconds, 1),
                   "answers_generated": len(ranker.answers),
                   "generation_seconds_per_user": round(ranker.generate_seconds / max(len(ranker.answers), 1), 3),
                   "torch_threads": torch.get_num_threads()},
        "grounding": {"exact_title_match_rate": exact, "generated_examples": examples},
        "training": {"config": cfg, **{k: meta.raw.get(k) for k in (
            "plm", "parameters", "trainable_parameters", "train_examples", "train_examples_available", "valid_users",
            "best_epoch", "epochs_run", "history", "train_seconds")}},
        **results,
    }
