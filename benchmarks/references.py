"""What served throughput is compared with: the same checkpoint scored in-process with Hugging Face
transformers, the SASRec baseline in plain PyTorch, and the hardware's limit (model FLOPs per request over a measured matmul rate)."""

from __future__ import annotations

import os
import time


def layer_flops_per_token(config) -> int:
    """Forward matmul FLOPs of the decoder layers for one token (2 per multiply-add): the q, k, v and o
    projections and the gated MLP's three, attention scores excluded."""
    d, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    q, kv = attention_width(config), config.num_key_value_heads * head_dim(config)
    return layers * 2 * (d * q + 2 * d * kv + q * d + 3 * d * inter)


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def attention_width(config) -> int:
    return config.num_attention_heads * head_dim(config)


def flops_per_request(config, prompt_length: int) -> int:
    """Matmul FLOPs of one prefill of `prompt_length` tokens (2 per multiply-add): projections and MLP
    for every token, causal attention, and the output head for the last position only (vLLM computes
    logits for the sampled position alone)."""
    # QK^T and AV over the causal pairs
    attention = config.num_hidden_layers * 2 * attention_width(config) * prompt_length * (prompt_length + 1)
    return prompt_length * layer_flops_per_token(config) + attention + 2 * config.hidden_size * config.vocab_size


# The vector extensions that set CPU matmul speed, so two machines of one model name can be told apart
# (both AVX2-only and AVX-512 AMD EPYC machines have run this project's benchmarks).
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def machine() -> dict:
    """What a measurement ran on: CPU model, count and vector extensions, Python and torch versions."""
    import platform

    import torch

    model, flags = None, []
    try:
        with open("/proc/cpuinfo") as f:
            info = {}
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())  # the first processor's lines
        model = info["model name"]
        flags = [flag for flag in VECTOR_FLAGS if flag in info["flags"].split()]
    except (OSError, KeyError):
        pass
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "cpu_model": model,
            "cpu_flags": flags, "python": platform.python_version(), "torch": torch.__version__}


def matmul_flops_per_s(threads: int, size: int = 1024, seconds: float = 2.0, shape=None) -> float:
    """Dense float32 matrix-multiply rate with `threads` torch threads on this machine, now: square
    `size` matrices, or (m, k, n) `shape` (a model's own layer shapes run slower than big squares).
    Its random matrices come from a generator of its own: reading the rate in the middle of a run
    leaves the run's random draws as they were."""
    import torch

    m, k, n = shape or (size, size, size)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        own = torch.Generator().manual_seed(0)
        a, b = torch.randn(m, k, generator=own), torch.randn(k, n, generator=own)
        for _ in range(3):
            a @ b  # warm-up
        reps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            a @ b
            reps += 1
        return 2 * m * k * n * reps / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)


def _rate(rank_all, n: int, seconds: float) -> tuple[float, int, float]:
    """Requests/s of `rank_all()` (which ranks n requests), repeated for at least `seconds`."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or done == 0:
        rank_all()
        done += n
    wall = time.perf_counter() - started
    return done / wall, done, round(wall, 3)


def hf_requests_per_s(checkpoint: str, prompts: list[list[int]], excludes: list[list[int]], k: int,
                      batch_size: int = 64, seconds: float = 10.0) -> dict:
    """The in-process alternative: LSRecRanker (transformers, SDPA attention, inference mode, batches
    of prompts of similar length, the same masking) ranking the same requests."""
    import torch

    from .lsrec_ranker import LSRecRanker

    ranker = LSRecRanker.from_checkpoint(checkpoint, batch_size=batch_size)
    ranker.rank_ids(prompts[:batch_size], excludes[:batch_size], k)  # warm-up
    rate, done, wall = _rate(lambda: ranker.rank_ids(prompts, excludes, k), len(prompts), seconds)
    return {"requests_per_s": rate, "requests": done, "seconds": wall, "batch_size": batch_size,
            "threads": torch.get_num_threads(), "attention": ranker.model.config._attn_implementation}


def sasrec_requests_per_s(checkpoint: str, histories: list[list[str]], k: int, batch_size: int = 64,
                          seconds: float = 10.0) -> dict:
    """What a SASRec user deploys: the baseline in plain PyTorch (inference mode, batches of similar
    length, history masked) ranking the same histories."""
    import torch

    from .sasrec_ranker import SASRecRanker

    ranker = SASRecRanker.from_checkpoint(checkpoint, batch_size=batch_size)
    ranker.rank(histories[:batch_size], k)  # warm-up
    rate, done, wall = _rate(lambda: ranker.rank(histories, k), len(histories), seconds)
    return {"requests_per_s": rate, "requests": done, "seconds": wall, "batch_size": batch_size,
            "threads": torch.get_num_threads(), "checkpoint": checkpoint,
            "parameters": sum(p.numel() for p in ranker.model.parameters())}
