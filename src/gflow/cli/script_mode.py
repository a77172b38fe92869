"""How gbatch tells a script from a command (`gbatch WORD ARGS…`).

- A word with shell syntax in it (`$`, quotes, `=`, `;` …) is a command line.
- A word with a '/' is a path. A bare name is a command if it is a shell builtin or on
  PATH, else a file of that name in the working directory (a script beside you).
- That file: a directory is refused; a text file is a script (its #SBATCH / # GFLOW lines
  are read, it is copied now, ARGS become $1 …); an executable binary is a command.
- Neither a command nor a file: refused at submission, in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from gflow.core.errors import InvalidInput

SHELL_SYNTAX = frozenset("$`'\"=;&|<>(){}*?[]~!# \t\n")
# bash's builtins and keywords: commands that are on no PATH
BUILTINS = frozenset(
    [
        "alias",
        "bg",
        "bind",
        "break",
        "builtin",
        "caller",
        "cd",
        "command",
        "compgen",
        "complete",
        "compopt",
        "continue",
        "declare",
        "dirs",
        "disown",
        "echo",
        "enable",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "fc",
        "fg",
        "getopts",
        "hash",
        "help",
        "history",
        "jobs",
        "kill",
        "let",
        "local",
        "logout",
        "mapfile",
        "popd",
        "printf",
        "pushd",
        "pwd",
        "read",
        "readarray",
        "readonly",
        "return",
        "set",
        "shift",
        "shopt",
        "source",
        "suspend",
        "test",
        "times",
        "trap",
        "true",
        "type",
        "typeset",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "wait",
        "case",
        "coproc",
        "do",
        "done",
        "elif",
        "else",
        "esac",
        "fi",
        "for",
        "function",
        "if",
        "in",
        "select",
        "then",
        "time",
        "until",
        "while",
        ".",
        ":",
        "[",
        "[[",
        "{",
        "}",
    ]
)


def on_path(name: str) -> bool:
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return True
    return False


def script_path(word: str) -> Path | None:
    """The script `word` names, or None when it is a command (see the module's rules)."""
    if not word or SHELL_SYNTAX.intersection(word):
        return None
    if "/" not in word and (word in BUILTINS or on_path(word)):
        return None
    path = Path(word)
    if path.is_dir():
        raise InvalidInput(f"{word} is a directory, not a script or a command")
    if not path.exists():
        where = "no such file" if "/" in word else "not a command on PATH, nor a file here"
        raise InvalidInput(f"{word}: {where}")
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise InvalidInput(f"cannot read {word}: {exc.strerror}") from None
    if b"\0" in head or head.startswith(b"\x7fELF"):
        if os.access(path, os.X_OK):
            return None  # a program: run it as a command
        raise InvalidInput(f"{word} is a binary file that is not executable")
    return path
