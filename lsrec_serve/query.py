"""A recommendation request for any of the five tasks, and its answer: what the client sends to a
server and what the offline recommender (lsrec.bench.lsrec_ranker) ranks build the same prompt and
decode answers the same way."""

from __future__ import annotations

from dataclasses import dataclass

from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.prompts import TASK_ARGUMENT, parse_prompt
from lsrec.tokenizer.vocab import TASKS, genre_token, item_token, rating_token, task_token


ARGUMENT_NAME = {"genres": "genre", "ratings": "rating", "items": "item"}
EXCLUDE_ARG = "lsrec_exclude"  # vllm_xargs key of a served request: item ids the answer must not contain


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

    @classmethod
    def make(cls, history, k=10, task="RECOMMEND", genre=None, rating=None, item=None, exclude=()) -> "Query":
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
        argument = None if given is None else (f"{float(given):g}" if family == "ratings" else str(given))
        return cls([str(i) for i in history], k, task, argument, tuple(str(i) for i in exclude))

    def prompt_text(self) -> str:
        """The prompt as space-separated tokens, for a server to tokenize (it checks every token)."""
        words = ["[BOS]", "[TASK]", task_token(self.task), "[ARGUMENTS]", *map(item_token, self.history)]
        family = TASK_ARGUMENT[self.task]
        if family == "genres":
            words.append(genre_token(self.argument))
        elif family == "ratings":
            words.append(rating_token(float(self.argument)))
        elif family == "items":
            words.append(item_token(self.argument))
        return " ".join([*words, "[START]"])

    def prompt_ids(self, tok) -> list[int]:
        """Token ids of prompt_text(), checked and fitted to the context exactly as a server does."""
        return parse_prompt(tok, self.prompt_text()).ids


def answer_of(token: str, meta=None) -> tuple[str, str]:
    """(value, title) of an answer token: an item id with its title, a genre, or a rating."""
    token = token.strip()
    for prefix in ("item_", "genre_", "rating_"):
        if token.startswith(prefix):
            value = token[len(prefix):]
            title = meta.title(value) if prefix == "item_" and meta is not None else ""
            return value, title
    raise LSRecError(f"the model answered with {token!r}, which is not an item, genre or rating")
