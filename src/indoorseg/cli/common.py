"""What every command shares: the Typer app, the consoles, and the error handler that turns
the toolkit's errors into one red line with the fix said as flags."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from indoorseg.errors import (
    IndoorsegError,
    TrainingInterrupted,
    UsageError,
    describe_fix,
    python_words,
)
from indoorseg.progress import Reporter

app = typer.Typer(
    help="Semantic segmentation of indoor scenes: the room apart from its objects.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# options that predict and evaluate share: how the probabilities are taken
RegionsOption = Annotated[
    bool | None,
    typer.Option(
        "--regions/--no-regions",
        help="Vote over image regions (cleaner on real photos, slower); default: as the "
        "model's recipe says.",
    ),
]
ScalesOption = Annotated[
    str, typer.Option(help="Sizes to run the network at, e.g. 1,0.5; averaged.")
]
BackendOption = Annotated[
    str,
    typer.Option(
        help="auto, or a backend of 'indoorseg backends' (torch, onnxruntime, openvino...)."
    ),
]


@app.callback()
def options(
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of any error."),
) -> None:
    """Semantic segmentation of indoor scenes: the room apart from its objects."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


def reporter() -> Reporter:
    """Progress on stderr, so that stdout stays parseable."""
    return Reporter(console=err)


def flag_words(ctx: typer.Context, templates: dict[str, str]) -> Callable[[str, object], str]:
    """How the running command says one fix: the option of the same name as the library's
    parameter, ``--set KEY=VALUE`` for a config key, or a template of the command's own
    (formatted with ``value`` and the command's arguments)."""

    def words(name: str, value: object) -> str:
        if name in templates:
            return templates[name].format(value=value, **ctx.params)
        options = {p.name: p.opts for p in ctx.command.params}
        if "." in name and "--set" in options.get("overrides", []):  # a config key
            return f"--set {name}={value}"
        flags = [opts[0] for key, opts in options.items() if key == name and opts]
        if not flags or not flags[0].startswith("-"):  # not an option of this command
            return python_words(name, value)
        if value is None:
            return f"another {flags[0]}"
        if value is ...:
            return f"{flags[0]} {name.upper()}"
        return flags[0] if value is True else f"{flags[0]} {value}"

    return words


def friendly(func: Callable | None = None, *, templates: dict[str, str] | None = None):
    """Turn the toolkit's errors into one red line and exit code 2 (no traceback); Ctrl-C
    into a line saying how to resume, and exit code 130.

    The command gets a ``ctx`` (Typer's context) of its own, to say fixes with its flags.

    Args:
        templates: library parameter -> how this command says it (see ``flag_words``).
    """
    if func is None:
        return functools.partial(friendly, templates=templates)

    @functools.wraps(func)
    def wrapper(*args, ctx: typer.Context, **kwargs):
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except TrainingInterrupted as e:
            err.print(f"stopped: resume with indoorseg train --resume {e.run_dir}")
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as e:
            if debugging():
                raise
            if isinstance(e, IndoorsegError):
                fail(
                    unwrap_worker(e.message) + describe_fix(e.fix, flag_words(ctx, templates or {}))
                )
            if isinstance(e, OSError):
                fail(os_message(e))
            if isinstance(e, ValueError):
                fail(unwrap_worker(str(e)))
            fail(
                f"internal error: {type(e).__name__}: {unwrap_worker(str(e))} (a bug: run again "
                f"with {DEBUG_ENV}=1 for the traceback and report it)",
                code=1,
            )

    signature = inspect.signature(func, eval_str=True)  # Typer reads the Annotated options
    context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), context])
    return wrapper


DEBUG_ENV = "INDOORSEG_DEBUG"


def debugging() -> bool:
    """Whether errors should surface with their traceback (``INDOORSEG_DEBUG=1``, or the
    ``--debug`` option before the command)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def unwrap_worker(message: str) -> str:
    """A DataLoader worker's error re-raised in the main process carries the worker's whole
    traceback; what the user needs is its last line, the original message."""
    if "Original Traceback" not in message:
        return message
    last = [line for line in message.splitlines() if line.strip()][-1]
    kind, sep, text = last.partition(": ")
    return text if sep and kind.replace(".", "").replace("_", "").isalnum() else last


def os_message(e: OSError) -> str:
    """``PATH: problem`` for a failed file operation (permission, full disk, a file where a
    folder should be...)."""
    text = e.strerror or str(e)
    files = [f for f in (e.filename, e.filename2) if f is not None]
    return f"{files[-1]}: {text}" if files else unwrap_worker(text)


def parse_size(text: str) -> tuple[int, int]:
    """``"240x320"`` -> ``(240, 320)``: HEIGHTxWIDTH in pixels, both positive.

    Raises:
        UsageError: the text is not of that form.
    """
    parts = text.strip().lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"size {text!r}: expected HEIGHTxWIDTH in pixels, e.g. 240x320")
    height, width = (int(p) for p in parts)
    if height < 1 or width < 1:
        raise UsageError(f"size {text!r}: height and width must be positive")
    return height, width


def fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
