"""The prompt format of paper Table 2, shared by training, offline evaluation and serving.

  [BOS] [TASK] [<task>] [ARGUMENTS] item ... item (genre | rating | item)? [START] answer [EOS]

History items come first, oldest to newest; a task argument (genre, rating, or the movie to rate)
follows them. Histories longer than the context keep their most recent items.
"""

from __future__ import annotations

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


def allowed_answer_ids(tok: ItemTokenizer, task: str, exclude_ids=()) -> list[int]:
    """Token ids a task may answer with: its family, minus excluded ids (the history for item tasks)."""
    family = range(*tok.vocab.families[ANSWER_FAMILY[task]])
    excluded = set(exclude_ids)
    return [i for i in family if i not in excluded]
