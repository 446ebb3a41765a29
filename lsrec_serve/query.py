"""A recommendation request for any of the five tasks, and its answer: what the client sends to a
server and what the offline recommender (lsrec.bench.lsrec_ranker) ranks build the same prompt and
decode answers the same way."""

from __future__ import annotations

from dataclasses import dataclass

from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.prompts import TASK_ARGUMENT, frame, parse_prompt
from lsrec.tokenizer.vocab import DEFAULT_LAYOUT, TASKS, genre_token, item_token, rating_token, task_token


ARGUMENT_NAME = {"genres": "genre", "ratings": "rating", "items": "item"}
EXCLUDE_ARG = "lsrec_exclude"  # vllm_xargs key of a served request: item ids the answer must not contain
GENRE_ONLY_ARG = "lsrec_genre_only"  # vllm_xargs key: true keeps a MOVIE_BY_GENRE answer to items of its genre


@dataclass
class Recommendation:
    item: str  # item id, genre name or rating value, by task
    title: str
    score: float  # log-probability among the allowed answers


@dataclass
class Query:
    """One request, checked for shape: the history (item ids, oldest first), the task and its argument."""

    history: list[str]
    k: int
    task: str = "RECOMMEND"
    argument: str | None = None  # genre, rating or item, by task
    exclude: tuple[str, ...] = ()
    genre_only: bool = False  # MOVIE_BY_GENRE: answer only with items of the genre

    @classmethod
    def make(cls, history, k=10, task="RECOMMEND", genre=None, rating=None, item=None, exclude=(),
             genre_only=False) -> "Query":
        if task not in TASKS:
            raise LSRecError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
        if not history:
            raise LSRecError("the history is empty: give at least one item id")
        if k < 1:
            raise LSRecError(f"k must be at least 1 (got {k})")
        family = TASK_ARGUMENT[task]
        given = {"genres": genre, "ratings": rating, "items": item}.get(family) if family else None
        if family and given is None:
            raise LSRecError(f"task {task} needs --{ARGUMENT_NAME[family]}")
        if genre_only and task != "MOVIE_BY_GENRE":
            raise LSRecError(f"genre_only applies to MOVIE_BY_GENRE, not {task}")
        argument = None if given is None else (f"{float(given):g}" if family == "ratings" else str(given))
        return cls([str(i) for i in history], k, task, argument, tuple(str(i) for i in exclude), bool(genre_only))

    def vllm_xargs(self) -> dict | None:
        """The request's LSRec options as vLLM's per-request `vllm_xargs` (None: none)."""
        extra = {**({EXCLUDE_ARG: list(self.exclude)} if self.exclude else {}),
                 **({GENRE_ONLY_ARG: True} if self.genre_only else {})}
        return extra or None

    def prompt_text(self, layout: str = DEFAULT_LAYOUT) -> str:
        """The prompt as space-separated tokens in a prompt layout (the model's: its tokenizer's
        `layout`), for a server to tokenize; `lsrec serve` accepts either layout and rewrites it."""
        family = TASK_ARGUMENT[self.task]
        argument = None
        if family == "genres":
            argument = genre_token(self.argument)
        elif family == "ratings":
            argument = rating_token(float(self.argument))
        elif family == "items":
            argument = item_token(self.argument)
        before, after = frame(layout, task_token(self.task), argument)
        return " ".join([*before, *map(item_token, self.history), *after])

    def prompt_ids(self, tok) -> list[int]:
        """Token ids of the prompt in the tokenizer's layout, checked and fitted to the context exactly
        as a server does."""
        return parse_prompt(tok, self.prompt_text(tok.layout)).ids


def answer_of(token: str, meta=None) -> tuple[str, str]:
    """(value, title) of an answer token: an item id with its title, a genre, or a rating."""
    token = token.strip()
    for prefix in ("item_", "genre_", "rating_"):
        if token.startswith(prefix):
            value = token[len(prefix):]
            title = meta.title(value) if prefix == "item_" and meta is not None else ""
            return value, title
    raise LSRecError(f"the model answered with {token!r}, which is not an item, genre or rating")
