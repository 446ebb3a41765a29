"""Recommendations from a running LSRec server through the `openai` client.

The server (vLLM with the LSRec plugin) checks every request against the catalogue and masks
what may not be returned; this client builds prompts, sends them and reads the top logprobs."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

from lsrec.tokenizer.checkpoint import is_checkpoint, load_metadata
from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.vocab import DEFAULT_LAYOUT

from .query import Query, Recommendation, answer_of

MASKED = -9999.0  # vLLM's JSON stand-in for a -inf logprob: a masked token


class LSRecClient:
    def __init__(self, url: str = "http://127.0.0.1:8000", checkpoint: str | None = None,
                 timeout: float = 120.0, concurrency: int = 16):
        import openai

        self.url = url.rstrip("/")
        self.concurrency = concurrency
        # No retries: a bad request would only be refused again, and a retry hides a failing server.
        self.openai = openai.OpenAI(base_url=f"{self.url}/v1", api_key=os.environ.get("LSREC_API_KEY", "EMPTY"),
                                    max_retries=0, timeout=timeout)
        model = self._call(lambda: self.openai.models.list()).data[0]
        self.model = model.id
        folder = checkpoint or getattr(model, "root", None)
        # Titles come from the checkpoint's metadata when its folder is readable from here.
        self.meta = load_metadata(folder) if folder and is_checkpoint(folder) else None
        # Prompts go out in the model's layout; without its folder, `lsrec serve` rewrites the default one.
        self.layout = self.meta.tokenizer.layout if self.meta else DEFAULT_LAYOUT

    def _call(self, request):
        import openai

        try:
            return request()
        except openai.APIStatusError as e:
            body = e.body if isinstance(e.body, dict) else {}
            message = body.get("message") or (body.get("error") or {}).get("message") or e.message
            raise LSRecError(f"the server refused the request ({e.status_code}): {message}") from None
        except openai.APIConnectionError:
            raise LSRecError(f"no LSRec server answers at {self.url} (start one with `lsrec serve CKPT`)") from None

    def top_tokens(self, query: Query) -> list[tuple[str, float]]:
        """(token, logprob) pairs, best first, masked tokens dropped."""
        xargs = query.vllm_xargs()
        extra = {"vllm_xargs": xargs} if xargs else None
        response = self._call(lambda: self.openai.completions.create(
            model=self.model, prompt=query.prompt_text(self.layout), max_tokens=1, temperature=0.0, logprobs=query.k,
            extra_body=extra))
        top = response.choices[0].logprobs.top_logprobs[0]
        ranked = sorted(((t.strip(), lp) for t, lp in top.items() if lp is not None and math.isfinite(lp) and lp > MASKED),
                        key=lambda pair: -pair[1])
        return ranked[: query.k]

    def recommend(self, history: list[str], k: int = 10, task: str = "RECOMMEND", genre: str | None = None,
                  rating: float | None = None, item: str | None = None, exclude=(),
                  genre_only: bool = False) -> list[Recommendation]:
        """Top-k answers in rank order: items (RECOMMEND, MOVIE_BY_GENRE, RECOMMEND_RATING), genres
        (RECOMMEND_GENRE) or a rating distribution (RATE_MOVIE). History items are never returned;
        with genre_only, a MOVIE_BY_GENRE answer holds items of that genre only."""
        query = Query.make(history, k, task, genre, rating, item, exclude, genre_only)
        return [Recommendation(*answer_of(token, self.meta), score) for token, score in self.top_tokens(query)]

    def rank(self, histories: list[list[str]], k: int) -> list[list[tuple[str, float]]]:
        """The evaluation's Ranker protocol: concurrent RECOMMEND requests, so the server batches them."""
        def one(history):
            return [(answer_of(t)[0], s) for t, s in self.top_tokens(Query.make(history, k))]

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(one, histories))
