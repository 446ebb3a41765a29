"""Multi-task SFT examples (paper Table 2) from the training split only.

For each user, the training target is the training split's (the validation and test targets are never seen).
Each example is {"input_ids", "labels"} in the shared prompt format; labels are -100 except on the
answer. With `all_positions`, the RECOMMEND example also learns every next item of the history
(as SASRec does), at no extra compute.
"""

from __future__ import annotations

from lsrec.tokenizer.dataset import PreparedData
from lsrec.tokenizer.prompts import prompt_ids
from lsrec.tokenizer.vocab import TASKS, ItemTokenizer

IGNORE = -100


def _example(tok: ItemTokenizer, task: str, history: list[int], answer: int, argument: int | None,
             all_positions: bool) -> dict:
    prompt = prompt_ids(tok, task, history, argument)
    input_ids = prompt + [answer, tok.eos_id]
    labels = [IGNORE] * len(prompt) + [answer, IGNORE]
    if all_positions:
        first_item = 4  # after [BOS] [TASK] [task] [ARGUMENTS]
        n_history = len(prompt) - first_item - 1 - int(argument is not None)
        for pos in range(first_item + 1, first_item + n_history):
            labels[pos] = input_ids[pos]
    return {"input_ids": input_ids, "labels": labels, "task": task}


def available_tasks(data: PreparedData) -> list[str]:
    """Genre tasks need genres, rating tasks need ratings."""
    tasks = ["RECOMMEND"]
    if data.vocab.genres:
        tasks += ["RECOMMEND_GENRE", "MOVIE_BY_GENRE"]
    if data.vocab.ratings:
        tasks += ["RATE_MOVIE", "RECOMMEND_RATING"]
    return [t for t in TASKS if t in tasks]


def build_examples(data: PreparedData, tasks: list[str], all_positions: bool,
                   aux_history: int | None = None) -> list[dict]:
    """One example per user and task, each tagged with "task" and "user" (its index). `aux_history` truncates the history of the four auxiliary
    tasks to its most recent items, so multi-task costs little more than RECOMMEND alone."""
    tok = data.tokenizer
    examples = []
    for user, seq in enumerate(data.sequences):
        start = len(examples)
        history, target = seq.split("train")
        history = [tok.item_id(i) for i in history]
        aux = history[-aux_history:] if aux_history else history
        target_id = tok.item_id(target)
        genres = data.catalogue.get(target, {}).get("genres", [])
        genre_id = tok.genre_id(genres[0]) if genres else None
        rating_id = tok.rating_id(seq.target_rating("train")) if seq.ratings else None
        for task in tasks:
            if task == "RECOMMEND":
                examples.append(_example(tok, task, history, target_id, None, all_positions))
            elif task == "RECOMMEND_GENRE" and genre_id is not None:
                examples.append(_example(tok, task, aux, genre_id, None, False))
            elif task == "MOVIE_BY_GENRE" and genre_id is not None:
                examples.append(_example(tok, task, aux, target_id, genre_id, False))
            elif task == "RATE_MOVIE" and rating_id is not None:
                examples.append(_example(tok, task, aux, rating_id, target_id, False))
            elif task == "RECOMMEND_RATING" and rating_id is not None:
                examples.append(_example(tok, task, aux, target_id, rating_id, False))
        for example in examples[start:]:
            example["user"] = user
    return examples


def _recommend_parts(example: dict) -> tuple[list[int], list[int], int, int]:
    """A RECOMMEND example's frame ([BOS] [TASK] [task] [ARGUMENTS]), history, answer and [EOS]."""
    ids = example["input_ids"]
    return ids[:4], ids[4:-3], ids[-2], ids[-1]


def start_copies(example: dict, start_id: int, copies: int) -> dict:
    """The RECOMMEND example with a [START] for each of the last `copies` cuts of its history, so the
    position that ranks learns many next items per pass (as the item positions do), not one per user:

        prefix i1 .. in [START] x m answer [EOS]        m = min(copies, n)

    Through `start_attention`, the [START] of cut k sees only the prefix and i1 .. ik, at the position
    a lone [START] after ik would have, and answers i(k+1) (the last one: the answer): each one is
    exactly the prompt that ranking reads after a history of k items."""
    prefix, history, answer, eos = _recommend_parts(example)
    m = min(copies, len(history))
    input_ids = prefix + history + [start_id] * m + [answer, eos]
    new_labels = example["labels"][:-3] + [IGNORE] + history[len(history) - m + 1:] + [answer, IGNORE]
    return {**example, "input_ids": input_ids, "labels": new_labels}


def start_attention(input_ids, start_id: int, dtype):
    """Additive 4D attention mask and position ids for batches that hold `start_copies` rows.

    In a row with m [START] tokens, the first at index f, the k-th [START] sees keys up to
    f - 1 - (m - k) and itself, at position f - (m - k); every other token is causal as usual. With
    one [START] (every other row, and every prompt at inference) this is the plain causal mask."""
    import torch

    batch, length = input_ids.shape
    is_start = input_ids == start_id
    count = is_start.sum(1, keepdim=True)
    first = is_start.int().argmax(1, keepdim=True)
    rank = is_start.cumsum(1)  # k at the k-th [START]
    index = torch.arange(length, device=input_ids.device)
    start_position = first - (count - rank)
    positions = torch.where(is_start, start_position, index)
    last_visible = torch.where(is_start, start_position - 1, index)
    visible = (index <= last_visible[:, :, None]) | torch.eye(length, dtype=torch.bool, device=input_ids.device)
    mask = torch.zeros(batch, 1, length, length, dtype=dtype, device=input_ids.device)
    mask.masked_fill_(~visible[:, None], torch.finfo(dtype).min)
    return mask, positions


class SampledAuxiliaryTasks:
    """A training set whose epoch holds every RECOMMEND example plus, per user, ONE auxiliary-task
    example drawn afresh each time it is read: multi-task costs about 2x single-task instead of 5x.
    An auxiliary row reports its user's RECOMMEND length to the length-grouped sampler, so it lands
    in a batch beside RECOMMEND sequences. (Batches of auxiliary prompts alone take optimizer steps
    of their own, which Adam scales up whatever their loss weight: measured on ML-100K, that cost
    RECOMMEND a quarter of its validation NDCG@10.)
    Draws use torch's global generator, which the Trainer seeds and restores on resume."""

    def __init__(self, examples: list[dict]):
        self.recommend = [e for e in examples if e["task"] == "RECOMMEND"]
        by_user: dict[int, list[dict]] = {}
        for e in examples:
            if e["task"] != "RECOMMEND":
                by_user.setdefault(e["user"], []).append(e)
        self.auxiliary = list(by_user.values())

    def __len__(self) -> int:
        return len(self.recommend) + len(self.auxiliary)

    def draw(self, index: int) -> dict:
        import torch

        if index < len(self.recommend):
            return self.recommend[index]
        choices = self.auxiliary[index - len(self.recommend)]
        return choices[int(torch.randint(len(choices), (1,)))]

    def as_dataset(self):
        """A `datasets.Dataset` (what TRL takes) of row indices, drawn into examples on read.
        The "length" column lets the length-grouped sampler batch without reading every row."""
        from datasets import Dataset

        length_of_user = {e["user"]: len(e["input_ids"]) for e in self.recommend}
        lengths = [len(e["input_ids"]) for e in self.recommend] + [length_of_user[c[0]["user"]] for c in self.auxiliary]
        rows = Dataset.from_dict({"index": list(range(len(self))), "length": lengths})

        def draw_batch(batch):
            drawn = [self.draw(i) for i in batch["index"]]
            # "length" passes through for the sampler; the collator ignores it.
            return {"input_ids": [e["input_ids"] for e in drawn], "labels": [e["labels"] for e in drawn],
                    "length": batch["length"]}

        return rows.with_transform(draw_batch)
