# Sourced by quickstart.sh and test.sh: make ./.venv, with or without Debian's python3-venv.
VENV="$PWD/.venv"
if [ ! -x "$VENV/bin/pip" ]; then
    python3 -m venv "$VENV" || {
        rm -rf "$VENV"
        python3 -m pip install -q --user virtualenv
        python3 -m virtualenv -q "$VENV"
    }
fi
