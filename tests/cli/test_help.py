"""What `effnet ... --help` says: every option explains itself and states its true default."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from effnet.cli import build_parser

# options whose value is "on or off": no default to state beyond the flag itself
FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction)
SKIPPED = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(command, parser) for the top level and every subcommand, nested ones (`data pack`) too."""
    yield " ".join(("effnet", *path)), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from commands(subparser, (*path, name))


def options() -> list[tuple[str, argparse.Action, str]]:
    """(command, action, its help as printed) for every argument of every command."""
    rows = []
    for command, parser in commands(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, SKIPPED):
                continue
            shown = formatter._expand_help(action) if action.help else ""
            rows.append((command, action, shown))
    return rows


def option_name(action: argparse.Action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def stated_defaults(help_text: str) -> list[str]:
    """The values after "default: " in a help text."""
    return [value.rstrip(".,:") for value in re.findall(r"default: ([^\s;)]+)", help_text)]


def states(value: object, stated: str) -> bool:
    """Whether the text ``stated`` names ``value``."""
    if isinstance(value, bool):
        return stated == ("on" if value else "off")
    if isinstance(value, (list, tuple)):
        return stated == ",".join(map(str, value))
    if isinstance(value, (int, float)):
        try:
            return float(stated) == value
        except ValueError:
            return False
    return stated == str(value)


OPTIONS = options()


@pytest.mark.parametrize(
    ("command", "action", "shown"), OPTIONS, ids=[f"{c} {option_name(a)}" for c, a, _ in OPTIONS]
)
def test_every_option_has_help(command, action, shown):
    assert shown.strip(), f"{command} {option_name(action)}: no help text"


WITH_DEFAULT = [
    (command, action, shown)
    for command, action, shown in OPTIONS
    if action.default is not None and not isinstance(action, FLAGS)
]


@pytest.mark.parametrize(
    ("command", "action", "shown"),
    WITH_DEFAULT,
    ids=[f"{c} {option_name(a)}" for c, a, _ in WITH_DEFAULT],
)
def test_help_states_the_parser_default(command, action, shown):
    stated = stated_defaults(shown)
    assert any(states(action.default, value) for value in stated), (
        f"{command} {option_name(action)}: default {action.default!r}, help says {shown!r}"
    )


def parser_of(command: str) -> argparse.ArgumentParser:
    return dict(commands(build_parser()))[f"effnet {command}"]


def help_of(command: str, option: str) -> str:
    [shown] = [s for c, a, s in OPTIONS if c == f"effnet {command}" and option in a.option_strings]
    return shown


def test_train_epochs_help_states_what_a_run_trains():
    from effnet.image_classifier.hparams import HParams

    args = parser_of("train").parse_args(["data", "--out", "run"])
    frozen = HParams(epochs=args.epochs).resolved(steps_per_epoch=1).epochs
    fine_tuned = HParams(epochs=args.epochs, train_whole_model=True).resolved(steps_per_epoch=1).epochs
    shown = help_of("train", "--epochs")
    assert f"default: {frozen} with a frozen backbone, {fine_tuned} with --fine-tune" in shown


@pytest.mark.parametrize(
    ("option", "field"), [("--learning-rate", "learning_rate"), ("--dropout-rate", "dropout_rate")]
)
def test_train_help_states_the_library_defaults(option, field):
    from effnet.image_classifier.hparams import HParams

    assert states(getattr(HParams(), field), stated_defaults(help_of("train", option))[0])


def test_train_parser_defaults_are_the_library_defaults():
    from dataclasses import fields

    from effnet.image_classifier.hparams import HParams

    args = vars(parser_of("train").parse_args(["data", "--out", "run"]))
    shared = [f.name for f in fields(HParams) if f.name in args and args[f.name] is not None]
    assert {"seed"} <= set(shared)
    for name in shared:
        assert args[name] == getattr(HParams(), name), name
    # --batch-size has no parser default: a classifier's is HParams', a detector's DetectorHParams'
    from effnet.object_detector.hparams import DetectorHParams

    assert args["batch_size"] is None
    shown = help_of("train", "--batch-size")
    assert f"default: {HParams.batch_size}" in shown and f"detectors: {DetectorHParams.batch_size}" in shown


def test_embed_train_parser_defaults_are_the_library_defaults():
    from dataclasses import fields

    from effnet.embedder.hparams import DEFAULT_SCALE, EmbedderHParams

    args = vars(parser_of("embed-train").parse_args(["data", "--out", "run"]))
    hparams = EmbedderHParams()
    shared = [f.name for f in fields(EmbedderHParams) if f.name in args and args[f.name] is not None]
    assert {"head", "loss", "embedding_dim", "input_size", "epochs", "batch_size", "learning_rate"} <= set(
        shared
    )
    for name in shared:
        assert args[name] == getattr(hparams, name), name
    assert states(DEFAULT_SCALE, stated_defaults(help_of("embed-train", "--scale"))[0])
    assert states(hparams.clip_grad_norm, stated_defaults(help_of("embed-train", "--clip-grad-norm"))[0])
