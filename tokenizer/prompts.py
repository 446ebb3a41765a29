"""The prompt format of paper Table 2, shared by training, offline evaluation and serving.

  [BOS] [TASK] [<task>] [ARGUMENTS] item ... item (genre | rating | item)? [START] answer [EOS]

History items come first, oldest to newest; a task argument (genre, rating, or the movie to rate)
follows them. Histories longer than the context keep their most recent items.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LSRecError
from .vocab import ItemTokenizer

CONTEXT_LENGTH = 200  # paper Table 1
FRAME_TOKENS = 5  # [BOS] [TASK] [task] [ARGUMENTS] ... [START]
ANSWER_TOKENS = 2  # answer and [EOS]


def max_history(has_argument: bool, context: int = CONTEXT_LENGTH) -> int:
    """History items that fit beside the frame, the optional argument and the answer."""
    return context - FRAME_TOKENS - ANSWER_TOKENS - int(has_argument)


def prompt_ids(tok: ItemTokenizer, task: str, history_ids: list[int], argument_id: int | None = None,
               context: int = CONTEXT_LENGTH) -> list[int]:
    """Token ids of a prompt ending in [START]; history_ids are item token ids, oldest first."""
    keep = max_history(argument_id is not None, context)
    history_ids = history_ids[-keep:] if keep > 0 else []
    ids = [tok.bos_id, tok.task_marker_id, tok.task_id(task), tok.arguments_id, *history_ids]
    if argument_id is not None:
        ids.append(argument_id)
    ids.append(tok.start_id)
    return ids


# Which token family each task answers with (the serving plugin and the evaluation share this rule).
ANSWER_FAMILY = {
    "RECOMMEND": "items",
    "MOVIE_BY_GENRE": "items",
    "RECOMMEND_RATING": "items",
    "RECOMMEND_GENRE": "genres",
    "RATE_MOVIE": "ratings",
}


def prompt_task(tok: ItemTokenizer, ids) -> str:
    """The task named by the token after [TASK]; RECOMMEND when a prompt names none."""
    ids = list(ids)
    for pos, token_id in enumerate(ids[:-1]):
        if token_id == tok.task_marker_id and ids[pos + 1] in tok.task_range:
            return tok.id_to_token[ids[pos + 1]][1:-1]
    return "RECOMMEND"


def answer_rule(tok: ItemTokenizer, ids, exclude_ids=()) -> tuple[range, set[int]]:
    """The one rule for what may answer a prompt, shared by offline evaluation and the vLLM plugin:
    the task's token family, minus, for item answers, every item in the prompt and exclude_ids."""
    family = range(*tok.vocab.families[ANSWER_FAMILY[prompt_task(tok, ids)]])
    if family != tok.item_range:
        return family, set()
    return family, {i for i in (*ids, *exclude_ids) if i in family}


# The argument each task takes after the history, by token family (None: no argument).
TASK_ARGUMENT = {"MOVIE_BY_GENRE": "genres", "RECOMMEND_RATING": "ratings", "RATE_MOVIE": "items",
                 "RECOMMEND": None, "RECOMMEND_GENRE": None}


@dataclass
class ParsedPrompt:
    task: str
    history: list[int]  # item token ids, oldest first, as given
    argument: int | None
    ids: list[int]  # the prompt refitted to the context: most recent history items kept
    dropped_items: list[str]  # item ids that did not fit (to keep them masked)


def parse_prompt(tok: ItemTokenizer, prompt, context: int = CONTEXT_LENGTH) -> ParsedPrompt:
    """Check a served prompt (space-separated tokens, or token ids) against the vocabulary and the
    format of paper Table 2; errors name the bad value."""
    ids = _prompt_token_ids(tok, prompt)
    frame = "[BOS] [TASK] [<task>] [ARGUMENTS] item ... [START]"
    if len(ids) < 5 or ids[:2] != [tok.bos_id, tok.task_marker_id] or ids[2] not in tok.task_range \
            or ids[3] != tok.arguments_id or ids[-1] != tok.start_id:
        raise LSRecError(f"a prompt must read {frame}")
    task = tok.id_to_token[ids[2]][1:-1]
    body = ids[4:-1]
    argument = None
    if TASK_ARGUMENT[task]:
        family = range(*tok.vocab.families[TASK_ARGUMENT[task]])
        if len(body) < 2 or body[-1] not in family:
            raise LSRecError(f"task {task} needs history items, then one {TASK_ARGUMENT[task][:-1]} before [START]")
        body, argument = body[:-1], body[-1]
    for token_id in body:
        if token_id not in tok.item_range:
            raise LSRecError(f"{tok.id_to_token[token_id]!r} in the history is not an item")
    if not body:
        raise LSRecError("the history is empty: give at least one item")
    fitted = prompt_ids(tok, task, body, argument, context)
    kept = len(fitted) - FRAME_TOKENS - int(argument is not None)
    dropped = [tok.item_of(i) for i in body[: len(body) - kept]]
    return ParsedPrompt(task, body, argument, fitted, dropped)


def _prompt_token_ids(tok: ItemTokenizer, prompt) -> list[int]:
    if isinstance(prompt, str):
        ids = []
        for word in prompt.split():
            if word in tok.token_to_id:
                ids.append(tok.token_to_id[word])
            elif word.startswith("item_"):
                tok.item_id(word[5:])  # raises, naming the item
            elif word.startswith("genre_"):
                tok.genre_id(word[6:])
            elif word.startswith("rating_"):
                tok.rating_id(word[7:])
            else:
                raise LSRecError(f"unknown token {word!r} in the prompt")
        return ids
    if isinstance(prompt, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in prompt):
        for i in prompt:
            if not 0 <= i < len(tok.id_to_token):
                raise LSRecError(f"token id {i} is not in this model's vocabulary")
        return list(prompt)
    raise LSRecError("the prompt must be a string of tokens or a list of token ids")
