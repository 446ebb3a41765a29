"""The paper's protocol: raw interactions -> chronological per-user sequences -> leave-one-out split.

A prepared dataset is a folder written once, atomically:
  sequences.jsonl   one user per line, items (and ratings) oldest first
  items.json        item id -> title and genres
  tokenizer.json, tokenizer_config.json   the Hugging Face item tokenizer
  manifest.json     source, protocol, counts, vocabulary families and the content hash of the above
For every user: items[-1] is the test target, items[-2] the validation target, items[-3] the
training target; everything before a target is its history (`UserSequence.split`, the one place this
rule is written).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import LSRecError
from .files import atomic_folder
from .vocab import ItemTokenizer, Vocabulary, save_hf_tokenizer

MANIFEST = "manifest.json"
# Leave-one-out: the target of each split is items[SPLIT_TARGET[split]] of every user's sequence.
SPLIT_TARGET = {"test": -1, "valid": -2, "train": -3}
HASHED_FILES = ("sequences.jsonl", "items.json")


@dataclass
class DataConfig:
    """How to turn raw interactions into a prepared dataset."""

    source: str | None = field(default=None, metadata={"help": "MovieLens folder, CSV or Parquet, or a packaged "
                                                        "release by name: ml-100k (the default) or ml-1m"})
    items: str | None = field(default=None, metadata={"help": "optional items file (item, title, genres) for CSV/Parquet"})
    output: str | None = field(default=None, metadata={"help": "folder to write the prepared dataset to; default "
                                                       "data/<source name>"})
    min_interactions: int = field(default=5, metadata={"help": "drop users with fewer interactions (paper: 5)"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing prepared folder"})

    def __post_init__(self):
        if self.min_interactions < 3:
            raise LSRecError("min_interactions must be at least 3: each user needs train, validation and test targets")
        if self.output is None:
            self.output = f"data/{Path(self.source or 'ml-100k').name.split('.')[0]}"


@dataclass
class UserSequence:
    user: str
    items: list[str]
    ratings: list[float] | None

    def _target_index(self, split: str) -> int:
        if split not in SPLIT_TARGET:
            raise ValueError(f"split must be one of {list(SPLIT_TARGET)} (got {split!r})")
        return len(self.items) + SPLIT_TARGET[split]

    def split(self, split: str) -> tuple[list[str], str]:
        """(history, target) of this user for `split`: the target and every item before it."""
        end = self._target_index(split)
        return self.items[:end], self.items[end]

    def target_rating(self, split: str) -> float | None:
        """The rating the user gave the target of `split` (None when the data has no ratings)."""
        return self.ratings[self._target_index(split)] if self.ratings else None


@dataclass
class Case:
    """One user's ranking question for a split: the history (item ids, oldest first) and the target."""

    user: str
    history: list[str]
    target: str


@dataclass
class PreparedData:
    folder: Path
    manifest: dict
    sequences: list[UserSequence]
    catalogue: dict[str, dict]  # item -> {"title": str, "genres": [str]}
    vocab: Vocabulary

    @property
    def tokenizer(self) -> ItemTokenizer:
        return ItemTokenizer(self.vocab)

    @property
    def split_hash(self) -> str:
        return self.manifest["sha256"]


def split_cases(data: "PreparedData", split: str = "test", users: list[str] | None = None) -> list[Case]:
    """Every user's (or the chosen users') Case for `split`, in the data's user order."""
    chosen = set(users) if users is not None else None
    return [Case(s.user, *s.split(split)) for s in data.sequences if chosen is None or s.user in chosen]


def build_sequences(inter, min_interactions: int) -> list[UserSequence]:
    """Stable chronological order per user (equal timestamps keep input order); short users dropped."""
    inter = inter.assign(_row=range(len(inter)))
    inter = inter.sort_values(["user", "timestamp", "_row"], kind="stable")
    has_ratings = not inter["rating"].isna().all()
    sequences = []
    for user, group in inter.groupby("user", sort=False):
        if len(group) < min_interactions:
            continue
        ratings = [float(r) for r in group["rating"]] if has_ratings else None
        sequences.append(UserSequence(str(user), group["item"].tolist(), ratings))
    # Users in numeric order when ids are integers, so files read naturally.
    sequences.sort(key=lambda s: _sort_key(s.user))
    return sequences


def _sort_key(value: str):
    return (0, int(value), "") if value.lstrip("-").isdigit() else (1, 0, value)


def build_vocabulary(sequences: list[UserSequence], catalogue: dict[str, dict]) -> Vocabulary:
    items = sorted({i for s in sequences for i in s.items}, key=_sort_key)
    genres = sorted({g for i in items for g in catalogue.get(i, {}).get("genres", [])})
    ratings = sorted({r for s in sequences if s.ratings for r in s.ratings})
    return Vocabulary(items=items, genres=genres, ratings=ratings)


def prepare(cfg: DataConfig, progress=None) -> PreparedData:
    """Read, order, filter and split; write the folder atomically (all files or none)."""
    from .formats import describe_source, read_interactions

    out = Path(cfg.output)
    if out.exists() and not cfg.overwrite:
        raise LSRecError(f"{out} already exists; pass --overwrite to replace it")
    inter, items, fmt = read_interactions(Path(cfg.source) if cfg.source else None,
                                          Path(cfg.items) if cfg.items else None)
    sequences = build_sequences(inter, cfg.min_interactions)
    if not sequences:
        raise LSRecError(f"no user has at least {cfg.min_interactions} interactions in {cfg.source or 'the data'}")
    used = {i for s in sequences for i in s.items}
    catalogue = {
        str(row.item): {"title": str(row.title), "genres": list(row.genres)}
        for row in items.itertuples() if str(row.item) in used
    }
    for item in used - catalogue.keys():
        catalogue[item] = {"title": f"item {item}", "genres": []}
    catalogue = dict(sorted(catalogue.items(), key=lambda kv: _sort_key(kv[0])))
    vocab = build_vocabulary(sequences, catalogue)
    _check_unique_tokens(vocab)

    with atomic_folder(out) as tmp:
        with open(tmp / "sequences.jsonl", "w") as f:
            for s in sequences:
                f.write(json.dumps(asdict(s)) + "\n")
        (tmp / "items.json").write_text(json.dumps(catalogue, ensure_ascii=False, indent=0))
        save_hf_tokenizer(vocab, tmp)
        manifest = {
            "name": out.name,
            "source": describe_source(cfg.source),
            "format": fmt,
            "protocol": {
                "min_interactions": cfg.min_interactions,
                "order": "timestamp, stable (ties keep input order)",
                # SPLIT_TARGET, under the key names manifests have always used
                "targets": {"test": SPLIT_TARGET["test"], "validation": SPLIT_TARGET["valid"],
                            "train": SPLIT_TARGET["train"]},
            },
            "counts": {
                "interactions_read": int(len(inter)),
                "users": len(sequences),
                "items": len(vocab.items),
                "interactions_kept": sum(len(s.items) for s in sequences),
            },
            "vocabulary": vocab.to_json(),
            "sha256": content_hash(tmp),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return load(out)


def _check_unique_tokens(vocab: Vocabulary) -> None:
    seen: dict[str, int] = {}
    for token in vocab.tokens:
        if token in seen:
            raise LSRecError(f"two values map to the token {token!r} (genres differing only by spaces/underscores?)")
        seen[token] = 1


def content_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in HASHED_FILES:
        digest.update((Path(folder) / name).read_bytes())
    return digest.hexdigest()


def load(folder: str | Path) -> PreparedData:
    """Load a prepared dataset and check that its files still match the recorded hash."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise LSRecError(f"{folder} is not a prepared dataset (no {MANIFEST}); run `lsrec data prepare` first")
    manifest = json.loads(manifest_path.read_text())
    if content_hash(folder) != manifest["sha256"]:
        raise LSRecError(f"{folder}: files changed since they were prepared (hash mismatch); prepare again")
    sequences = [UserSequence(**json.loads(line)) for line in open(folder / "sequences.jsonl")]
    catalogue = json.loads((folder / "items.json").read_text())
    vocab = Vocabulary.from_json(manifest["vocabulary"])
    return PreparedData(folder, manifest, sequences, catalogue, vocab)
