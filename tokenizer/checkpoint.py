"""lsrec.json: the metadata that makes a checkpoint folder describe itself.

Token families, the item catalogue, the split it was trained on (with its hash) and how it was
trained. Weights and tokenizer files sit beside it in standard Hugging Face format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import LSRecError
from .vocab import ItemTokenizer, Vocabulary

METADATA_FILE = "lsrec.json"
FORMAT = "lsrec-checkpoint/1"


@dataclass
class CheckpointMeta:
    folder: Path
    raw: dict

    @property
    def vocab(self) -> Vocabulary:
        return Vocabulary.from_json(self.raw["vocabulary"])

    @property
    def tokenizer(self) -> ItemTokenizer:
        return ItemTokenizer(self.vocab)

    @property
    def catalogue(self) -> dict[str, dict]:
        return self.raw["catalogue"]

    @property
    def tasks(self) -> list[str]:
        return self.raw["tasks"]

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


def write_metadata(folder: str | Path, data: dict) -> None:
    path = Path(folder) / METADATA_FILE
    path.write_text(json.dumps({"format": FORMAT, **data}, indent=1, ensure_ascii=False))


def load_metadata(folder: str | Path) -> CheckpointMeta:
    folder = Path(folder)
    if not folder.is_dir():
        raise LSRecError(f"{folder}: no such checkpoint folder")
    if not is_checkpoint(folder):
        raise LSRecError(f"{folder} is not an LSRec checkpoint (no valid {METADATA_FILE})")
    return CheckpointMeta(folder, json.loads((folder / METADATA_FILE).read_text()))
