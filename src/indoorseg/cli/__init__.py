"""The ``indoorseg`` command: one module per command group, each command a few lines over a
library call (``indoorseg.cli.common`` holds the app and the error handler)."""

from indoorseg.cli import (  # noqa: F401 (registers the commands)
    adapt,
    data,
    deploy,
    evaluate,
    reproduce,
    schemes,
    train,
    webapp,
)
from indoorseg.cli.common import app

__all__ = ["app"]
