"""``indoorseg app``: a local web page to see a model segment photos and videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from indoorseg.cli.common import BackendOption, app, friendly, out


@app.command("app")
@friendly
def serve_app(
    model: Annotated[
        Path | None, typer.Argument(help="Run folder, checkpoint or .onnx (default: make demo's).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (only this machine).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    backend: BackendOption = "auto",
):
    """Serve a page where photos and videos dropped on it are segmented; Ctrl-C stops it."""
    from indoorseg.app.server import App, serve

    application = App(model, backend)
    server = serve(application, host, port)
    out.print(f"indoorseg app on http://{host}:{server.server_port}/ (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        out.print("stopped")
    finally:
        server.server_close()
        application.close()
