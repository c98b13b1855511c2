"""Shell completion scripts for ``storage-dsn``: ``storage-dsn completion bash|zsh|fish``.

Each script is static (the shell never runs Python to complete) and written out from the
argument parser, so a new command or option is in the next script printed without an
edit here. They complete commands, each command's options, fixed choices, and, for
storage arguments, file names and the exported environment variables whose name holds
``DSN``.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

__all__ = ["SHELLS", "script"]

SHELLS = ("bash", "zsh", "fish")


class _Option(NamedTuple):
    names: tuple[str, ...]
    help: str
    takes_value: bool


class _Command(NamedTuple):
    name: str
    help: str
    options: tuple[_Option, ...]
    choices: tuple[str, ...]


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (one of :data:`SHELLS`)."""
    commands = _commands(parser)
    top = _options(parser)
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](commands, top)


# -- reading the parser ------------------------------------------------------------------


def _options(parser: argparse.ArgumentParser) -> tuple[_Option, ...]:
    # argparse has no public API to walk a parser; _actions is what its help uses.
    return tuple(
        _Option(tuple(a.option_strings), a.help or "", a.nargs != 0)
        for a in parser._actions
        if a.option_strings and a.help != argparse.SUPPRESS
    )


def _commands(parser: argparse.ArgumentParser) -> list[_Command]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    found = []
    for name, command in sub.choices.items():
        choices = tuple(
            str(c) for a in command._actions if not a.option_strings for c in (a.choices or ())
        )
        found.append(_Command(name, helps.get(name, ""), _options(command), choices))
    return found


def _valued(commands: list[_Command]) -> list[str]:
    """Options followed by a value (a number, a pattern): nothing to complete after them."""
    return sorted({n for c in commands for o in c.options if o.takes_value for n in o.names})


# -- bash ---------------------------------------------------------------------------------


def _bash(commands: list[_Command], top: tuple[_Option, ...]) -> str:
    cases = "\n".join(
        f'        {c.name}) opts="{_words(c.options)}"; choices="{" ".join(c.choices)}" ;;'
        for c in commands
    )
    names = " ".join(c.name for c in commands)
    return f"""\
# bash completion for storage-dsn, written by `storage-dsn completion bash`.
# Load it from ~/.bashrc:  eval "$(storage-dsn completion bash)"
_storage_dsn() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local cmd="" word opts="" choices=""
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        [[ $word == -* ]] || {{ cmd=$word; break; }}
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "{names} {_words(top)}" -- "$cur"))
        return
    fi
    case $cmd in
{cases}
    esac
    case $prev in
        {"|".join(_valued(commands)) or "--"}) return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ -n $choices ]]; then
        COMPREPLY=($(compgen -W "$choices" -- "$cur"))
    else
        COMPREPLY=($(compgen -e -X '!*DSN*' -- "$cur") $(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _storage_dsn storage-dsn
"""


def _words(options: tuple[_Option, ...]) -> str:
    return " ".join(name for option in options for name in option.names)


# -- zsh ----------------------------------------------------------------------------------


def _zsh(commands: list[_Command], top: tuple[_Option, ...]) -> str:
    listed = "\n".join(f"        {_zq(c.name, c.help)}" for c in commands)
    cases = "\n".join(
        f"        ({c.name})\n"
        f"            opts=({' '.join(_zq(n, o.help) for o in c.options for n in o.names)})\n"
        f"            choices=({' '.join(c.choices)}) ;;"
        for c in commands
    )
    return f"""\
#compdef storage-dsn
# zsh completion for storage-dsn, written by `storage-dsn completion zsh`.
# Load it from ~/.zshrc, after compinit:  source <(storage-dsn completion zsh)
# or save it as _storage-dsn in a directory on $fpath.
_storage_dsn() {{
    local cmd word
    local -a opts choices
    for word in ${{words[2,CURRENT-1]}}; do
        [[ $word == -* ]] || {{ cmd=$word; break }}
    done
    if [[ -z $cmd ]]; then
        local -a commands=(
{listed}
        )
        _describe -t commands 'storage-dsn command' commands
        compadd -- {_words(top)}
        return
    fi
    case $cmd in
{cases}
    esac
    case ${{words[CURRENT-1]}} in
        ({"|".join(_valued(commands)) or "--"}) return ;;
    esac
    if [[ $PREFIX == -* ]]; then
        _describe -t options 'option' opts
    elif (( $#choices )); then
        compadd -a choices
    else
        local -a exported=(${{(k)parameters[(R)*export*]}})
        compadd -- ${{(M)exported:#*DSN*}}
        _files
    fi
}}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _storage_dsn "$@"
else
    compdef _storage_dsn storage-dsn
fi
"""


def _zq(name: str, text: str) -> str:
    """``'name:text'`` for ``_describe``, the text's colons escaped, single-quoted."""
    entry = f"{name}:{text.replace(':', chr(92) + ':')}"
    return "'" + entry.replace("'", "'\\''") + "'"


# -- fish ---------------------------------------------------------------------------------


def _fish(commands: list[_Command], top: tuple[_Option, ...]) -> str:
    first = "__fish_use_subcommand"
    lines = [
        "# fish completion for storage-dsn, written by `storage-dsn completion fish`.",
        "# Load it:  storage-dsn completion fish > ~/.config/fish/completions/storage-dsn.fish",
        "complete -c storage-dsn -f",
        *(f"complete -c storage-dsn -n {first} {_flags(o)}" for o in top),
    ]
    for c in commands:
        when = f"__fish_seen_subcommand_from {c.name}"
        lines.append(f"complete -c storage-dsn -n {first} -a {c.name} -d {_fq(c.help)}")
        lines += [f"complete -c storage-dsn -n '{when}' {_flags(o)}" for o in c.options]
        valued = _valued([c])
        if valued:  # no file names where the value of --jobs goes
            when += f"; and not __fish_prev_arg_in {' '.join(valued)}"
        if c.choices:
            lines.append(f"complete -c storage-dsn -n '{when}' -a {_fq(' '.join(c.choices))}")
        else:
            lines.append(f"complete -c storage-dsn -n '{when}' -F")
            dsn_variables = "'(set -xn | string match \"*DSN*\")'"
            lines.append(f"complete -c storage-dsn -n '{when}' -a {dsn_variables}")
    return "\n".join(lines) + "\n"


def _flags(option: _Option) -> str:
    parts = []
    for name in option.names:
        if name.startswith("--"):
            parts.append(f"-l {name[2:]}")
        else:
            parts.append(f"-s {name[1:]}")
    if option.takes_value:
        parts.append("-x")  # a value, not a file name
    return " ".join(parts) + f" -d {_fq(option.help)}"


def _fq(text: str) -> str:
    """``text`` single-quoted for fish."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
