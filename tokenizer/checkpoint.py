"""A checkpoint folder and its lsrec.json: the metadata that makes the folder describe itself.

Every model LSRec writes (LSRec, SASRec, BigRec, a DPO round) is one folder `<output_dir>/<name>`
written by `write_checkpoint`: its weights in the model's own format, and lsrec.json with the token
families, the item catalogue, the split it was trained on (with its hash), its architecture and how
it was trained. LSRec folders also hold the Hugging Face tokenizer files.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import dataset
from .errors import LSRecError
from .files import atomic_folder
from .vocab import ItemTokenizer, Vocabulary

METADATA_FILE = "lsrec.json"
FORMAT = "lsrec-checkpoint/1"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
CHECKPOINTS = "checkpoints"  # the default <output_dir> of every command that writes a model


def checkpoint_folder(output_dir: str | Path, name: str) -> Path:
    """Where a run named `name` keeps its best model: `<output_dir>/<name>` (`lsrec serve` takes it)."""
    return Path(output_dir) / name


@dataclass
class CheckpointMeta:
    folder: Path
    raw: dict

    @property
    def vocab(self) -> Vocabulary:
        return Vocabulary.from_json(self.raw["vocabulary"])

    @property
    def tokenizer(self) -> ItemTokenizer:
        """The item tokenizer in the prompt layout the model was trained with (task-first for folders
        written before the field existed)."""
        return ItemTokenizer(self.vocab, self.raw.get("prompt_layout", "task-first"))

    @property
    def catalogue(self) -> dict[str, dict]:
        return self.raw["catalogue"]

    @property
    def tasks(self) -> list[str]:
        return self.raw["tasks"]

    @property
    def architecture(self) -> str:
        """llama (LSRec, the default of folders written before the field existed), sasrec or bigrec."""
        return self.raw.get("architecture", "llama")

    def title(self, item: str) -> str:
        return self.catalogue.get(item, {}).get("title", f"item {item}")


def is_checkpoint(folder: str | Path) -> bool:
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def load_metadata(folder: str | Path) -> CheckpointMeta:
    folder = Path(folder)
    if not folder.is_dir():
        raise LSRecError(f"{folder}: no such checkpoint folder")
    if not is_checkpoint(folder):
        raise LSRecError(f"{folder} is not an LSRec checkpoint (no valid {METADATA_FILE})")
    return CheckpointMeta(folder, json.loads((folder / METADATA_FILE).read_text()))


def write_metadata(folder: Path, metadata: dict) -> None:
    metadata = {k: v for k, v in metadata.items() if k != "format"}
    (folder / METADATA_FILE).write_text(json.dumps({"format": FORMAT, **metadata}, indent=1, ensure_ascii=False))


def write_checkpoint(folder: str | Path, data, metadata: dict, write_weights: Callable[[Path], None],
                     tokenizer_files: bool = True) -> Path:
    """The one checkpoint writer. `write_weights(tmp)` writes the model's files into a temporary
    folder; the data's tokenizer files (when asked) and lsrec.json (the split's description from
    `data`, then `metadata`) join them, and the folder replaces `folder` at once."""
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        write_weights(tmp)
        if tokenizer_files:
            for name in TOKENIZER_FILES:
                shutil.copy(data.folder / name, tmp / name)
        write_metadata(tmp, {**split_metadata(data), **metadata})
    return folder


def update_metadata(folder: str | Path, **changes) -> None:
    """Change fields of an existing checkpoint's lsrec.json (e.g. the validation history after the best epoch)."""
    meta = load_metadata(folder).raw
    write_metadata(Path(folder), {**meta, **changes})


def split_metadata(data) -> dict:
    """What every lsrec.json holds about the data a model was trained on: vocabulary, catalogue, split."""
    return {
        "vocabulary": data.vocab.to_json(),
        "catalogue": data.catalogue,
        "split": {"data": str(data.folder), "sha256": data.split_hash, "protocol": data.manifest["protocol"],
                  "counts": data.manifest["counts"], "source": data.manifest["source"]},
    }


def data_for_checkpoint(folder: str | Path, data_dir: str | None = None):
    """The prepared split a checkpoint was trained on (or `data_dir`); refuses a different split (hash check)."""
    split = load_metadata(folder).raw["split"]
    data = dataset.load(data_dir or split["data"])
    if data.split_hash != split["sha256"]:
        raise LSRecError(f"{data.folder} is not the split {folder} was trained on "
                         f"(sha256 {data.split_hash[:12]} != {split['sha256'][:12]})")
    return data


def user_test_case(folder: str | Path, user: str):
    """A user's test-time history and held-out target in the split a checkpoint was trained on."""
    cases = dataset.split_cases(data_for_checkpoint(folder), "test", [user])
    if not cases:
        raise LSRecError(f"user {user!r} is not in the checkpoint's split")
    return cases[0]
