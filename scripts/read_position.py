"""Where should an LSRec model read its ranking? A diagnostic for docs/RESULTS.md.

LSRec ranks from the hidden state at [START], the prompt's last token (paper Table 2). Trained on
every position, the model also predicts the next item at every history item, and the last item's
position is trained once per position, where [START] sees one answer per user. This script ranks the
validation and test splits both ways with the same masking and metrics, and prints NDCG@10:

    python scripts/read_position.py checkpoints/lsrec-medium-mt [more checkpoints]

Reading from the last item is not what the served model does (vLLM answers after [START]); it is a
measurement of how much the [START] position loses.
"""

from __future__ import annotations

import json
import sys

from lsrec.bench.evaluate import evaluate
from lsrec.bench.lsrec_ranker import LSRecRanker
from lsrec.tokenizer import dataset as prepared
from lsrec.tokenizer.checkpoint import load_metadata
from lsrec.tokenizer.dataset import split_cases
from lsrec.tokenizer.prompts import prompt_ids


class LastItemRanker(LSRecRanker):
    """The RECOMMEND prompt without its trailing [START]: scores come from the last history item."""

    def rank(self, histories, k, argument=None):
        tok = self.tok
        hist_ids = [[tok.item_id(i) for i in h] for h in histories]
        prompts = [prompt_ids(tok, self.task, h, argument)[:-1] for h in hist_ids]
        return [[(tok.item_of(t), s) for t, s in top] for top in self.rank_ids(prompts, hist_ids, k)]


def main(folders: list[str]) -> None:
    rows = []
    for folder in folders:
        data = prepared.load(load_metadata(folder).raw["split"]["data"])
        row = {"checkpoint": folder}
        for split in ("valid", "test"):
            cases = split_cases(data, split)
            for name, ranker in (("start", LSRecRanker), ("last_item", LastItemRanker)):
                row[f"{split}/{name}"] = evaluate(ranker.from_checkpoint(folder), cases, len(data.vocab.items))["NDCG@10"]
        rows.append(row)
        print(f"{folder}: NDCG@10 valid [START] {row['valid/start']:.4f} last item {row['valid/last_item']:.4f}; "
              f"test [START] {row['test/start']:.4f} last item {row['test/last_item']:.4f}", flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
