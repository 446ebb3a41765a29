"""The prompt format of paper Table 2, shared by training, offline evaluation and serving, in two
layouts (the tokenizer's `layout`, recorded in each checkpoint):

  history-first (the paper's):  [BOS] item ... item [TASK] [<task>] ([ARGUMENTS] argument)? [START]
  task-first:                   [BOS] [TASK] [<task>] [ARGUMENTS] item ... item argument? [START]

The answer and [EOS] follow [START] in training. History items run oldest to newest; the argument is a
genre, rating or movie, by task. Histories longer than the context keep their most recent items.
History-first makes a user's history a prefix that every task of that user shares.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LSRecError
from .vocab import ItemTokenizer

CONTEXT_LENGTH = 200  # paper Table 1
ANSWER_TOKENS = 2  # answer and [EOS]


def frame(layout: str, task, argument=None, bos="[BOS]", task_marker="[TASK]", arguments="[ARGUMENTS]",
          start="[START]") -> tuple[list, list]:
    """What goes before and after the history in a layout, as tokens (the defaults) or token ids."""
    if layout == "task-first":
        return [bos, task_marker, task, arguments], ([] if argument is None else [argument]) + [start]
    return [bos], [task_marker, task, *([] if argument is None else [arguments, argument]), start]


def prompt_frame(tok: ItemTokenizer, task: str, argument_id: int | None = None) -> tuple[list[int], list[int]]:
    """The token ids before and after the history in the tokenizer's layout."""
    return frame(tok.layout, tok.task_id(task), argument_id, tok.bos_id, tok.task_marker_id, tok.arguments_id,
                 tok.start_id)


def max_history(tok: ItemTokenizer, has_argument: bool, context: int = CONTEXT_LENGTH) -> int:
    """History items that fit beside the frame, the optional argument and the answer."""
    before, after = prompt_frame(tok, "RECOMMEND", tok.start_id if has_argument else None)
    return context - len(before) - len(after) - ANSWER_TOKENS


def prompt_ids(tok: ItemTokenizer, task: str, history_ids: list[int], argument_id: int | None = None,
               context: int = CONTEXT_LENGTH) -> list[int]:
    """Token ids of a prompt ending in [START]; history_ids are item token ids, oldest first."""
    keep = max_history(tok, argument_id is not None, context)
    history_ids = history_ids[-keep:] if keep > 0 else []
    before, after = prompt_frame(tok, task, argument_id)
    return [*before, *history_ids, *after]


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


def answer_rule(tok: ItemTokenizer, ids, exclude_ids=(), genre_items=None) -> tuple[range, set[int]]:
    """The one rule for what may answer a prompt, shared by offline evaluation and the vLLM plugin:
    the task's token family, minus, for item answers, every item in the prompt and exclude_ids.
    With `genre_items` (genre token id -> item token ids, `genre_item_ids`), a MOVIE_BY_GENRE prompt
    may be answered only by items of its genre."""
    task = prompt_task(tok, ids)
    family = range(*tok.vocab.families[ANSWER_FAMILY[task]])
    if family != tok.item_range:
        return family, set()
    banned = {i for i in (*ids, *exclude_ids) if i in family}
    if genre_items is not None and task == "MOVIE_BY_GENRE":
        genre = next((i for i in ids if i in tok.genre_range), None)
        allowed = genre_items.get(genre, set())
        banned |= {i for i in family if i not in allowed}
    return family, banned


def genre_item_ids(tok: ItemTokenizer, catalogue: dict[str, dict]) -> dict[int, set[int]]:
    """Genre token id -> the token ids of the catalogue's items that carry the genre."""
    out: dict[int, set[int]] = {tok.genre_id(g): set() for g in tok.vocab.genres}
    for item in tok.vocab.items:
        for genre in catalogue.get(item, {}).get("genres") or []:
            if genre in tok.vocab.genres:
                out[tok.genre_id(genre)].add(tok.item_id(item))
    return out


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
    format of paper Table 2, in either layout; errors name the bad value. `ids` is the prompt in the
    tokenizer's own layout, fitted to the context."""
    ids = _prompt_token_ids(tok, prompt)
    frames = ("[BOS] item ... [TASK] [<task>] ([ARGUMENTS] argument)? [START] or "
              "[BOS] [TASK] [<task>] [ARGUMENTS] item ... argument? [START]")
    if len(ids) < 4 or ids[0] != tok.bos_id or ids[-1] != tok.start_id:
        raise LSRecError(f"a prompt must read {frames}")
    if ids[1] == tok.task_marker_id and len(ids) >= 5 and ids[3] == tok.arguments_id:  # task-first
        if ids[2] not in tok.task_range:
            raise LSRecError(f"a prompt must read {frames}")
        task, body = tok.id_to_token[ids[2]][1:-1], ids[4:-1]
        argument = None
        if TASK_ARGUMENT[task]:
            family = range(*tok.vocab.families[TASK_ARGUMENT[task]])
            if len(body) < 2 or body[-1] not in family:
                raise LSRecError(f"task {task} needs history items, then one {TASK_ARGUMENT[task][:-1]} before [START]")
            body, argument = body[:-1], body[-1]
    else:  # history-first: [TASK] [<task>] ([ARGUMENTS] argument)? [START] closes the prompt
        marker = max((i for i, t in enumerate(ids) if t == tok.task_marker_id), default=None)
        if marker is None or marker + 1 >= len(ids) - 1 or ids[marker + 1] not in tok.task_range:
            raise LSRecError(f"a prompt must read {frames}")
        task, body, tail = tok.id_to_token[ids[marker + 1]][1:-1], ids[1:marker], ids[marker + 2:-1]
        argument = None
        if TASK_ARGUMENT[task]:
            family = range(*tok.vocab.families[TASK_ARGUMENT[task]])
            if len(tail) != 2 or tail[0] != tok.arguments_id or tail[1] not in family:
                raise LSRecError(f"task {task} needs [ARGUMENTS] and one {TASK_ARGUMENT[task][:-1]} before [START]")
            argument = tail[1]
        elif tail:
            raise LSRecError(f"task {task} takes no argument: [START] must follow [{task}]")
    for token_id in body:
        if token_id not in tok.item_range:
            raise LSRecError(f"{tok.id_to_token[token_id]!r} in the history is not an item")
    if not body:
        raise LSRecError("the history is empty: give at least one item")
    fitted = prompt_ids(tok, task, body, argument, context)
    kept = min(len(body), max(max_history(tok, argument is not None, context), 0))
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
