"""Rank items with an LSRec model in-process (the offline path), and recommend with it."""

from __future__ import annotations

from pathlib import Path

import torch

from lsrec.serve.query import Query, Recommendation, answer_of
from lsrec.tokenizer.checkpoint import load_metadata
from lsrec.tokenizer.prompts import answer_rule, genre_item_ids, prompt_ids
from lsrec.tokenizer.vocab import ItemTokenizer


class LSRecRanker:
    """Scores are log-probabilities over the allowed answers (the task's family minus the history)."""

    def __init__(self, model, tok: ItemTokenizer, batch_size: int = 128, task: str = "RECOMMEND", meta=None):
        self.model, self.tok, self.batch_size, self.task = model, tok, batch_size, task
        self.meta = meta  # CheckpointMeta when loaded from a folder

    @classmethod
    def from_checkpoint(cls, folder: str | Path, **kwargs) -> "LSRecRanker":
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging

        logging.disable_progress_bar()
        meta = load_metadata(folder)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
        return cls(model.eval(), meta.tokenizer, meta=meta, **kwargs)

    @torch.inference_mode()
    def rank_ids(self, prompts: list[list[int]], excludes: list[list[int]], k: int, genre_items=None):
        """Top-k (token id, logprob) per prompt under the shared answer rule (tokenizer.prompts.answer_rule):
        the prompt's task family, minus the items in the prompt and in excludes (and, with `genre_items`,
        a MOVIE_BY_GENRE prompt's items outside its genre)."""
        was_training = self.model.training
        self.model.eval()
        results: list = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        device = next(self.model.parameters()).device
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(prompts[i]) for i in idx)
            ids = torch.full((len(idx), width), self.tok.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, : len(prompts[i])] = torch.tensor(prompts[i])
                mask[row, : len(prompts[i])] = 1
            lengths = mask.sum(1)
            # The output layer on each row's last real position only, not on every position.
            hidden = self.model.model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
            last = self.model.lm_head(hidden[torch.arange(len(idx)), (lengths - 1).to(device)]).float()
            scores = torch.full_like(last, float("-inf"))
            for row, i in enumerate(idx):
                family, banned = answer_rule(self.tok, prompts[i], excludes[i], genre_items)
                scores[row, family.start : family.stop] = last[row, family.start : family.stop]
                if banned:
                    scores[row, sorted(banned)] = float("-inf")
            logprobs = torch.log_softmax(scores, dim=-1)
            top = torch.topk(logprobs, min(k, logprobs.shape[-1]), dim=-1)
            for row, i in enumerate(idx):
                results[i] = [(int(t), float(s)) for t, s in zip(top.indices[row], top.values[row])
                              if s > float("-inf")]
        self.model.train(was_training)
        return results

    def rank(self, histories: list[list[str]], k: int, argument=None):
        """Rank items for the RECOMMEND task: history items masked."""
        tok = self.tok
        hist_ids = [[tok.item_id(i) for i in h] for h in histories]
        prompts = [prompt_ids(tok, self.task, h, argument) for h in hist_ids]
        tops = self.rank_ids(prompts, hist_ids, k)
        return [[(tok.item_of(t), s) for t, s in top] for top in tops]


class OfflineRecommender:
    """`LSRecClient.recommend`, answered in-process from a checkpoint folder."""

    def __init__(self, folder: str | Path):
        self.ranker = LSRecRanker.from_checkpoint(folder)
        self.meta = self.ranker.meta
        self.tok = self.ranker.tok

    def recommend(self, history: list[str], k: int = 10, task: str = "RECOMMEND", genre: str | None = None,
                  rating: float | None = None, item: str | None = None, exclude=(),
                  genre_only: bool = False) -> list[Recommendation]:
        query = Query.make(history, k, task, genre, rating, item, exclude, genre_only)
        tok = self.tok
        exclude_ids = [tok.item_id(i) for i in (*query.history, *query.exclude)]
        genre_items = genre_item_ids(tok, self.meta.catalogue) if query.genre_only else None
        [top] = self.ranker.rank_ids([query.prompt_ids(tok)], [exclude_ids], k, genre_items)
        return [Recommendation(*answer_of(tok.id_to_token[t], self.meta), score) for t, score in top]
