"""Shell completion for bash and zsh, generated from each command's own argparse parser
(`gbatch completion bash`), so it can never drift from the flags."""

from __future__ import annotations

import argparse
import importlib

from gflow.core.errors import InvalidInput

SHELLS = ("bash", "zsh")


def _words(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]]]:
    """The parser's options, and each subcommand's options."""
    options: list[str] = []
    subcommands: dict[str, list[str]] = {}
    for action in parser._actions:  # argparse has no public API for this
        options += [o for o in action.option_strings if o.startswith("--") or len(o) == 2]
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                subcommands[name] = _words(sub)[0]
    return options, subcommands


def completion_script(shell: str, prog: str) -> str:
    if shell not in SHELLS:
        raise InvalidInput(f"no completion for shell {shell!r}", hint="use bash or zsh")
    module = importlib.import_module(f"gflow.cli.{prog}")
    options, subcommands = _words(module.build_parser())
    function = f"_gflow_{prog}"
    top = " ".join([*subcommands, *options, "completion"])
    cases = "".join(
        f"      {name}) words={' '.join(opts)!r};;\n" for name, opts in subcommands.items()
    )
    body = f"""{function}() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" words
  if [ "$COMP_CWORD" -eq 1 ] || [ -z "{"x" if subcommands else ""}" ]; then
    words={top!r}
  else
    case "${{COMP_WORDS[1]}}" in
{cases}      *) words="";;
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F {function} {prog}
"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body
