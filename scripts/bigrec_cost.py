"""What BigRec costs on this machine, before planning runs: load the PLM, time one LoRA training step on a
real ML-100K example and one greedy generation for a real 10-title prompt, and extrapolate to an epoch of
BigRec-1024 and of BigRec-full. Run with OMP_NUM_THREADS=1 for the one-thread numbers in docs/RESULTS.md.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bigrec_cost.py --data data/ml-100k [--plm FILE_OR_FOLDER]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from lsrec.tokenizer import dataset as prepared
from lsrec.models.plm import load_plm
from lsrec.train.bigrec import BigRecConfig, training_examples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/ml-100k")
    parser.add_argument("--plm", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from peft import LoraConfig, get_peft_model

    cfg = BigRecConfig(data=args.data, plm=args.plm)
    data = prepared.load(args.data)
    examples = training_examples(data, cfg.history_length)
    started = time.time()
    model, tok = load_plm(args.plm)
    load_seconds = time.time() - started
    parameters = sum(p.numel() for p in model.parameters())  # before LoRA wraps it
    example = max(examples[:200], key=lambda e: len(e["prompt"]))  # a full 10-title prompt
    ids = tok(example["prompt"] + example["completion"] + tok.eos_token, return_tensors="pt")["input_ids"]
    prompt = tok(example["prompt"], return_tensors="pt")
    lengths = [len(tok(e["prompt"] + e["completion"])["input_ids"]) for e in examples[:: max(1, len(examples) // 500)]]

    peft = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                            target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in peft.parameters() if p.requires_grad], lr=cfg.learning_rate)
    steps = []
    for _ in range(args.repeats + 1):  # the first step warms up allocations and is left out
        t = time.time()
        peft(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        steps.append(time.time() - t)
    peft.eval()
    generations = []
    with torch.inference_mode():
        for _ in range(args.repeats + 1):
            t = time.time()
            out = peft.generate(**prompt, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                                pad_token_id=tok.pad_token_id)
            generations.append(time.time() - t)
    step = statistics.median(steps[1:])
    result = {
        "torch_threads": torch.get_num_threads(),
        "load_seconds": round(load_seconds, 1),
        "parameters": parameters,
        "example_tokens": int(ids.shape[1]),
        "mean_example_tokens": round(statistics.mean(lengths), 1),
        "lora_step_seconds_one_example": round(step, 2),
        "generation_seconds_one_prompt": round(statistics.median(generations[1:]), 2),
        "generated_tokens": int(out.shape[1] - prompt["input_ids"].shape[1]),
        "training_examples_full": len(examples),
        "epoch_hours_bigrec_1024": round(1024 * step / 3600, 2),
        "epoch_hours_bigrec_full": round(len(examples) * step / 3600, 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
