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


def start_attention(input_ids, start_id: int | None, dtype, segments=None):
    """Additive 4D attention mask and position ids for batches that hold `start_copies` rows,
    sequences packed side by side in one row, or both.

    `segments` numbers the sequences of each row (0, 1, ...; -1 for padding; None: one sequence per
    row). A token sees only earlier tokens of its own sequence, at a position counted from that
    sequence's start. In a sequence with m [START] tokens (contiguous), the k-th [START] sees keys up
    to the one m - k before the first [START], and itself, at the position a lone [START] there
    would have. With one [START] (every other sequence, and every prompt at inference) this is the
    plain causal mask."""
    import torch

    batch, length = input_ids.shape
    index = torch.arange(length, device=input_ids.device).expand(batch, length)
    if segments is None:
        segments = torch.zeros_like(input_ids)
    starts_here = torch.ones_like(segments, dtype=torch.bool)
    starts_here[:, 1:] = segments[:, 1:] != segments[:, :-1]
    segment_start = torch.where(starts_here, index, 0).cummax(1).values
    is_start = input_ids == start_id if start_id is not None else torch.zeros_like(starts_here)
    # [START] tokens per sequence, read back at each token of that sequence
    slot = segments.clamp(min=0)
    count = torch.zeros(batch, int(slot.max()) + 1, dtype=torch.long, device=input_ids.device)
    count = count.scatter_add(1, slot, is_start.long()).gather(1, slot)
    # the k-th of m contiguous [START]s at index i stands where a lone one after cut k would: i + 1 - m
    last_visible = torch.where(is_start, index - count, index)
    positions = torch.where(is_start, index + 1 - count, index) - segment_start
    visible = (index[:, None, :] <= last_visible[:, :, None]) & (segments[:, :, None] == segments[:, None, :])
    visible |= torch.eye(length, dtype=torch.bool, device=input_ids.device)
    mask = torch.zeros(batch, 1, length, length, dtype=dtype, device=input_ids.device)
    mask.masked_fill_(~visible[:, None], torch.finfo(dtype).min)
    return mask, positions


class PackedCollator:
    """Collates a batch of examples into rows as wide as its longest one, several short sequences
    side by side in one row (first fit, longest first), with `segments` numbering them (-1 on padding)
    and `label_weights` holding each label's weight (`aux_weight` for auxiliary-task labels).

    Through `start_attention` the packed rows compute exactly what one padded row per example would,
    on fewer tokens: a multi-task batch pads each short auxiliary prompt to the longest RECOMMEND
    row, about a third of its tokens on ML-100K. `pack=False` gives one example per row."""

    def __init__(self, pad_id: int, recommend_id: int, aux_weight: float = 1.0, pack: bool = True):
        self.pad_id, self.recommend_id, self.aux_weight, self.pack = pad_id, recommend_id, aux_weight, pack

    def rows(self, lengths: list[int]) -> list[list[int]]:
        """Example indices per row."""
        if not self.pack:
            return [[i] for i in range(len(lengths))]
        width = max(lengths)
        rows, free = [], []
        for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
            fit = next((r for r, room in enumerate(free) if room >= lengths[i]), None)
            if fit is None:
                rows.append([i])
                free.append(width - lengths[i])
            else:
                rows[fit].append(i)
                free[fit] -= lengths[i]
        return rows

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        lengths = [len(e["input_ids"]) for e in examples]
        rows = self.rows(lengths)
        shape = (len(rows), max(lengths))
        input_ids = torch.full(shape, self.pad_id)
        labels = torch.full(shape, IGNORE)
        segments = torch.full(shape, -1)
        label_weights = torch.zeros(shape)
        for r, members in enumerate(rows):
            offset = 0
            for s, i in enumerate(members):
                ids, n = examples[i]["input_ids"], lengths[i]
                span = slice(offset, offset + n)
                input_ids[r, span] = torch.tensor(ids)
                labels[r, span] = torch.tensor(examples[i]["labels"])
                segments[r, span] = s
                label_weights[r, span] = 1.0 if ids[2] == self.recommend_id else self.aux_weight
                offset += n
        return {"input_ids": input_ids, "labels": labels, "segments": segments, "label_weights": label_weights}


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
