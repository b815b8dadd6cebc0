"""``indoorseg schemes``: the built-in class schemes."""

from __future__ import annotations

from rich.table import Table

from indoorseg.cli.common import app, friendly, out


@app.command("schemes")
@friendly
def schemes():
    """List the built-in class schemes."""
    from indoorseg.classes import builtin_scheme_names, read_scheme_dict, scheme_from_dict

    table = Table(title="class schemes")
    for col in ("name", "space", "void", "classes", "description"):
        table.add_column(col)
    for name in builtin_scheme_names():
        s = scheme_from_dict(*read_scheme_dict(name))
        count = str(s.num_classes) if s.classes else "from the dataset"  # nyu894
        table.add_row(name, s.space, s.void, count, s.description)
    out.print(table)
