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
