"""``python -m indoorseg``: the same as the ``indoorseg`` command."""

from indoorseg.cli import app

app(prog_name="indoorseg")
