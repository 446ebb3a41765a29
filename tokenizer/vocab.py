"""The item vocabulary: one token per item, plus special, task, genre and rating tokens.

Token ids are laid out in families so that a serving plugin can mask by contiguous ranges:
  [special tokens][task tokens][genre tokens][rating tokens][item tokens]
The vocabulary is saved as standard Hugging Face tokenizer files (loadable with AutoTokenizer)
and described by the `families` dict stored in lsrec.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import LSRecError

BOS, EOS, PAD, TASK, ARGUMENTS, START = "[BOS]", "[EOS]", "[PAD]", "[TASK]", "[ARGUMENTS]", "[START]"
SPECIAL_TOKENS = [PAD, BOS, EOS, TASK, ARGUMENTS, START]
# Paper Table 2: the five tasks.
# Where the task goes in a prompt (lsrec.tokenizer.prompts): after the history, as the paper's Table 2
# ("history-first"), or before it ("task-first", what checkpoints written before the choice existed use).
PROMPT_LAYOUTS = ("history-first", "task-first")
DEFAULT_LAYOUT = "task-first"
TASKS = ["RECOMMEND", "RECOMMEND_GENRE", "RATE_MOVIE", "MOVIE_BY_GENRE", "RECOMMEND_RATING"]


def item_token(item: str) -> str:
    return f"item_{item}"


def genre_token(genre: str) -> str:
    return "genre_" + genre.replace(" ", "_")


def rating_token(rating: float) -> str:
    return f"rating_{rating:g}"


def task_token(task: str) -> str:
    return f"[{task}]"


@dataclass
class Vocabulary:
    """Token strings in id order, and the [start, end) id range of each family."""

    items: list[str]
    genres: list[str]
    ratings: list[float]

    @property
    def tokens(self) -> list[str]:
        return (
            SPECIAL_TOKENS
            + [task_token(t) for t in TASKS]
            + [genre_token(g) for g in self.genres]
            + [rating_token(r) for r in self.ratings]
            + [item_token(i) for i in self.items]
        )

    @property
    def families(self) -> dict[str, list[int]]:
        sizes = [("special", len(SPECIAL_TOKENS)), ("tasks", len(TASKS)), ("genres", len(self.genres)),
                 ("ratings", len(self.ratings)), ("items", len(self.items))]
        ranges, start = {}, 0
        for name, size in sizes:
            ranges[name] = [start, start + size]
            start += size
        return ranges

    def __len__(self) -> int:
        return len(SPECIAL_TOKENS) + len(TASKS) + len(self.genres) + len(self.ratings) + len(self.items)

    def to_json(self) -> dict:
        return {"items": self.items, "genres": self.genres, "ratings": self.ratings, "families": self.families}

    @classmethod
    def from_json(cls, data: dict) -> "Vocabulary":
        return cls(items=list(data["items"]), genres=list(data["genres"]), ratings=[float(r) for r in data["ratings"]])


class ItemTokenizer:
    """Maps item ids, genres, ratings and tasks to token ids and back; unknown values are errors."""

    def __init__(self, vocab: Vocabulary, layout: str = DEFAULT_LAYOUT):
        if layout not in PROMPT_LAYOUTS:
            raise LSRecError(f"prompt layout: unknown {layout!r}; choose one of {', '.join(PROMPT_LAYOUTS)}")
        self.vocab, self.layout = vocab, layout
        self.token_to_id = {tok: i for i, tok in enumerate(vocab.tokens)}
        self.id_to_token = vocab.tokens
        fam = vocab.families
        self.item_range = range(*fam["items"])
        self.task_range = range(*fam["tasks"])
        self.genre_range = range(*fam["genres"])
        self.rating_range = range(*fam["ratings"])
        self.pad_id, self.bos_id, self.eos_id = (self.token_to_id[t] for t in (PAD, BOS, EOS))
        self.task_marker_id, self.arguments_id, self.start_id = (self.token_to_id[t] for t in (TASK, ARGUMENTS, START))

    def item_id(self, item) -> int:
        try:
            return self.token_to_id[item_token(str(item))]
        except KeyError:
            raise LSRecError(f"unknown item id {item!r}: it is not in this model's catalogue") from None

    def genre_id(self, genre: str) -> int:
        try:
            return self.token_to_id[genre_token(genre)]
        except KeyError:
            raise LSRecError(f"unknown genre {genre!r}; known genres: {', '.join(self.vocab.genres)}") from None

    def rating_id(self, rating) -> int:
        try:
            return self.token_to_id[rating_token(float(rating))]
        except (KeyError, ValueError):
            known = ", ".join(f"{r:g}" for r in self.vocab.ratings)
            raise LSRecError(f"unknown rating {rating!r}; known ratings: {known}") from None

    def task_id(self, task: str) -> int:
        try:
            return self.token_to_id[task_token(task)]
        except KeyError:
            raise LSRecError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}") from None

    def item_of(self, token_id: int) -> str:
        if token_id not in self.item_range:
            raise LSRecError(f"token id {token_id} is not an item token")
        return self.vocab.items[token_id - self.item_range.start]

    def genre_of(self, token_id: int) -> str:
        return self.vocab.genres[token_id - self.genre_range.start]

    def rating_of(self, token_id: int) -> float:
        return self.vocab.ratings[token_id - self.rating_range.start]


def save_hf_tokenizer(vocab: Vocabulary, folder: Path) -> None:
    """Write tokenizer.json + tokenizer_config.json: one whitespace-separated word per token, no unknown token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokens = vocab.tokens
    core = Tokenizer(models.WordLevel({tok: i for i, tok in enumerate(tokens)}, unk_token=None))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    fast = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[TASK, ARGUMENTS, START],
        model_max_length=200,
        clean_up_tokenization_spaces=False,
    )
    fast.save_pretrained(str(folder))
