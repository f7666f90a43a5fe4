"""`wb web MODEL --out DIR` and `wb web serve DIR`: the exported model live in a browser."""

from __future__ import annotations

import click

from wakebuilder.cli.checks import FloatIn, InPath, IntIn, OutPath
from wakebuilder.cli.options import (
    STARTS_OVER, WRITES_NOTHING, handle_errors, json_option, overwrite_option, report, stream_setting_options,
    threshold_option,
)


class DefaultBuildGroup(click.Group):
    """``wb web MODEL ...`` means ``wb web build MODEL ...``; ``wb web serve DIR`` serves."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultBuildGroup)
def web() -> None:
    """A web page that runs exported models on the microphone (ONNX Runtime Web).

    \b
    wb web MODEL.onnx [MODEL2.onnx ...] --out DIR   build the page folder;
    wb web serve DIR [--port N]                     serve it on http://127.0.0.1:N/.
    """


@web.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--out", "out_dir", required=True, type=OutPath(file_okay=False), help="Page folder to write.")
@threshold_option
@stream_setting_options(as_calibrated=True)
@click.option("--stream/--no-stream", default=True, show_default=True,
              help="Speech-embedding models: compute only what is new since the last window (exact; 3-4x "
                   "faster in the browser), else run the whole window every hop.")
@overwrite_option
@json_option
@handle_errors(on_interrupt=STARTS_OVER)
def build(models: tuple[str, ...], out_dir: str, threshold: float | None, hop_s: float | None,
          refractory_s: float | None, smooth: int | None, stream: bool, overwrite: bool, as_json: bool) -> None:
    """Write a self-contained page folder for exported MODELS (NAME.onnx or export directories).

    One score trace per model. Needs ONNX Runtime Web, which bin/setup installs from npm.
    """
    from wakebuilder.web.build import WebConfig, build_web_page

    config = WebConfig(threshold=threshold, hop_s=hop_s, refractory_s=refractory_s, smooth=smooth,
                       stream=stream)
    summary = build_web_page(list(models), out_dir, config=config, overwrite=overwrite)
    click.echo(f"wb: serve it with: wb web serve {summary['out']}", err=True)
    report(summary["out"], summary, as_json)


@web.command()
@click.argument("directory", type=InPath(exists=True, file_okay=False, path_type=str))
@click.option("--port", type=IntIn(0, 65535), default=8000, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@handle_errors(on_interrupt=WRITES_NOTHING)
def serve(directory: str, port: int) -> None:
    """Serve a page folder on http://127.0.0.1:PORT/ until interrupted (Ctrl-C)."""
    from wakebuilder.web.serve import page_server, page_url

    server = page_server(directory, port=port)
    click.echo(page_url(server))
    click.echo("wb: open the address in a browser and press Start microphone; Ctrl-C stops", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("wb: stopped", err=True)
    finally:
        server.server_close()
