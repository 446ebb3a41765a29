"""Multi-task SFT examples (paper Table 2) from the training split only.

For each user, the training target is the training split's (the validation and test targets are never seen).
Each example is {"input_ids", "labels"} in the shared prompt format; labels are -100 except on the
answer. With `all_positions`, the RECOMMEND example also learns every next item of the history
(as SASRec does), at no extra compute.
"""

from __future__ import annotations

from lsrec.tokenizer.dataset import PreparedData
from lsrec.tokenizer.prompts import prompt_frame, prompt_ids
from lsrec.tokenizer.vocab import TASKS, ItemTokenizer

IGNORE = -100


def _example(tok: ItemTokenizer, task: str, history: list[int], answer: int, argument: int | None,
             all_positions: bool) -> dict:
    prompt = prompt_ids(tok, task, history, argument)
    input_ids = prompt + [answer, tok.eos_id]
    labels = [IGNORE] * len(prompt) + [answer, IGNORE]
    if all_positions:
        before, after = prompt_frame(tok, task, argument)
        first_item, n_history = len(before), len(prompt) - len(before) - len(after)
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
                   aux_history: int | None = None, tok: ItemTokenizer | None = None) -> list[dict]:
    """One example per user and task, each tagged with "task" and "user" (its index), in the prompt
    layout of `tok` (default: the data's tokenizer). `aux_history` truncates the history of the four
    auxiliary tasks to its most recent items, so multi-task costs little more than RECOMMEND alone."""
    tok = tok or data.tokenizer
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


def copy_group(tok: ItemTokenizer) -> list[int]:
    """The tokens after a RECOMMEND history that lead to the answer: [START] (task-first), or
    [TASK] [RECOMMEND] [START] (history-first). `start_copies` repeats them once per cut."""
    return prompt_frame(tok, "RECOMMEND")[1]


def start_copies(example: dict, tok: ItemTokenizer, copies: int) -> dict:
    """The RECOMMEND example with a copy of the [START] group (`copy_group`) for each of the last
    `copies` cuts of its history, so the position that ranks learns many next items per pass (as the
    item positions do), not one per user:

        prefix i1 .. in group x m answer [EOS]        m = min(copies, n)

    Through `start_attention`, the group of cut k sees only the prefix and i1 .. ik (and its own
    earlier tokens), at the positions a lone group after ik would have, and its [START] answers
    i(k+1) (the last one: the answer): each one is exactly the prompt that ranking reads after a
    history of k items."""
    group = copy_group(tok)
    ids, labels = example["input_ids"], example["labels"]
    n_prefix = len(prompt_frame(tok, "RECOMMEND")[0])
    end = len(ids) - len(group) - 2  # the history ends before the group, the answer and [EOS]
    prefix, history, answer, eos = ids[:n_prefix], ids[n_prefix:end], ids[-2], ids[-1]
    m = min(copies, len(history))
    input_ids = prefix + history + group * m + [answer, eos]
    # The label after group k's [START] is what that group predicts: the next item of its cut.
    block = []
    for k in range(m):
        block += [IGNORE if k == 0 else history[len(history) - m + k]] + [IGNORE] * (len(group) - 1)
    return {**example, "input_ids": input_ids, "labels": labels[:end] + block + [answer, IGNORE]}


def start_attention(input_ids, start_id: int | None, dtype, segments=None, group: int = 1):
    """Additive 4D attention mask and position ids for batches that hold `start_copies` rows,
    sequences packed side by side in one row, or both.

    `segments` numbers the sequences of each row (0, 1, ...; -1 for padding; None: one sequence per
    row). A token sees only earlier tokens of its own sequence, at a position counted from that
    sequence's start. A sequence with m [START] tokens ends its prompt with m contiguous copies of a
    `group` of tokens ending in [START] (`copy_group`: 1 token task-first, 3 history-first): the k-th
    copy sees keys up to the one m - k before the block, and its own earlier tokens, at the positions a
    lone group there would have. With one [START] (every other sequence, and every prompt at
    inference) this is the plain causal mask."""
    import torch

    batch, length = input_ids.shape
    device = input_ids.device
    index = torch.arange(length, device=device).expand(batch, length)
    if segments is None:
        segments = torch.zeros_like(input_ids)
    starts_here = torch.ones_like(segments, dtype=torch.bool)
    starts_here[:, 1:] = segments[:, 1:] != segments[:, :-1]
    segment_start = torch.where(starts_here, index, 0).cummax(1).values
    is_start = input_ids == start_id if start_id is not None else torch.zeros_like(starts_here)
    # per sequence, read back at each of its tokens: how many [START]s (m) and where the last one is
    slot = segments.clamp(min=0)
    slots = int(slot.max()) + 1
    count = torch.zeros(batch, slots, dtype=torch.long, device=device)
    count = count.scatter_add(1, slot, is_start.long()).gather(1, slot)
    last = torch.full((batch, slots), -1, dtype=torch.long, device=device)
    last = last.scatter_reduce(1, slot, torch.where(is_start, index, -1), "amax").gather(1, slot)
    block_start = last - group * count + 1
    in_block = (index >= block_start) & (index <= last)
    copy = (index - block_start).clamp(min=0) // group  # which copy (k - 1) a block token belongs to
    cut_end = block_start - count + copy  # the last history token copy k sees
    last_visible = torch.where(in_block, cut_end, index)
    group_from = torch.where(in_block, block_start + group * copy, index)
    positions = torch.where(in_block, cut_end + 1 + index - group_from, index) - segment_start
    keys = index[:, None, :]
    visible = (keys <= last_visible[:, :, None]) | ((keys >= group_from[:, :, None]) & (keys <= index[:, :, None]))
    visible &= segments[:, :, None] == segments[:, None, :]
    mask = torch.zeros(batch, 1, length, length, dtype=dtype, device=device)
    mask.masked_fill_(~visible[:, None], torch.finfo(dtype).min)
    return mask, positions


class PackedCollator:
    """Collates a batch of examples into rows as wide as its longest one, several short sequences
    side by side in one row (first fit, longest first), with `segments` numbering them (-1 on padding)
    and `label_weights` holding each label's weight (`aux_weight` for auxiliary-task labels).

    Through `start_attention` the packed rows compute exactly what one padded row per example would,
    on fewer tokens: a multi-task batch pads each short auxiliary prompt to the longest RECOMMEND
    row, about a third of its tokens on ML-100K. `pack=False` gives one example per row."""

    def __init__(self, pad_id: int, recommend_id: int, task_marker_id: int, aux_weight: float = 1.0,
                 pack: bool = True):
        self.pad_id, self.recommend_id, self.task_marker_id = pad_id, recommend_id, task_marker_id
        self.aux_weight, self.pack = aux_weight, pack

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
                task = ids[ids.index(self.task_marker_id) + 1]
                label_weights[r, span] = 1.0 if task == self.recommend_id else self.aux_weight
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
