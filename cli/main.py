"""The ``recs`` command group and its one error boundary.

Every command is thin: it parses options into a config, calls one library function and renders what
comes back. Library code raises ``RecsError`` subclasses; ``RecsGroup.invoke`` is the only place that
turns them into a one-line message and exit code 2 (click's own usage errors also exit with 2).
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from recs._version import __version__
from recs.errors import RecsError


class UserFacingError(click.ClickException):
    """A RecsError shown as ``Error: <message>`` with exit code 2."""

    exit_code = 2


class Terminated(SystemExit):
    """SIGTERM, raised where the command is: every ``with`` block unwinds as it does on an error, so
    temporaries are removed (``recs.atomic``) and nothing half-written is committed. Exit code 143
    (128 + SIGTERM), what a shell reports for a process the signal ended."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def _cleanup_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into ``Terminated`` while a command runs. Only where the process has no handler of
    its own (a program that embeds the CLI keeps its own), and only in the main thread (signals are
    delivered there). Not for ``recs serve``, whose server handles SIGTERM itself (and re-raises it)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _with_cleanup_on_sigterm(callback: Callable[..., Any]) -> Callable[..., Any]:
    """A command's callback that runs under ``_cleanup_on_sigterm``."""
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _cleanup_on_sigterm():
            return callback(*args, **kwargs)
    return run


class RecsGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except RecsError as e:
            raise UserFacingError(str(e)) from None


@click.group(cls=RecsGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="recs")
def cli() -> None:
    """recs: candidate sets that know a click from a cart-add.

    Learns one vector per (item, interaction) token from session logs (Zhao et al., WWW'20), indexes
    them per interaction with Faiss HNSW, and writes Click-to-Cart and Cart-to-Cart candidate sets.

    \b
    A full run on a generated marketplace:
      recs synth --events 200000 --out runs/synth.parquet
      recs split runs/synth.parquet --train runs/train.parquet --test runs/test.parquet
      recs train-embeddings runs/train.parquet --out runs/model
      recs build-index --model runs/model --out runs/index
      recs eval-hitrate --index runs/index --sessions runs/test.parquet
    """
    # gensim logs INFO chatter on every train() call; the CLI shows its own progress bars instead.
    # Set here, not in the library, so that Python users keep whatever logging they configured.
    logging.getLogger("gensim").setLevel(logging.ERROR)


def _register() -> None:
    from recs.cli import (
        check_cmd,
        compare_cmd,
        data_cmds,
        eval_cmd,
        index_cmd,
        prepare_cmd,
        recommend_cmd,
        serve_cmd,
        stats_cmd,
        train_cmd,
        tune_cmd,
    )
    from recs.cli.options import verbose_option

    for module in (prepare_cmd, stats_cmd, data_cmds, train_cmd, index_cmd, eval_cmd, recommend_cmd, serve_cmd,
                   compare_cmd, tune_cmd, check_cmd):
        for command in module.COMMANDS:
            command.params.append(verbose_option())  # one option, one meaning, on every command
            if module is not serve_cmd and command.callback is not None:
                command.callback = _with_cleanup_on_sigterm(command.callback)
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="recs")
