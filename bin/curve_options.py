"""CURVE on the command line: the client options every command shares, and ``arena keys``.

Servers take ``--curve-secret`` and ``--curve-allow`` (``arena broker``); clients take
``--curve-server`` and ``--curve-secret`` (``arena world``, ``gateway``, ``play``,
``monitor``, ``status``); ``arena up --curve DIR`` takes an ``arena keys`` directory.
"""

from __future__ import annotations

from typing import Any

import click

from broker.security import DEFAULT_CLIENTS, write_keys
from protocol import CurveClient, CurveKeys

__all__ = ["curve_client", "curve_client_options", "curve_keys", "keys"]


def curve_client_options(command: Any) -> Any:
    """``--curve-server`` and ``--curve-secret``: a client's CURVE files (both or neither)."""
    command = click.option("--curve-secret", metavar="FILE", type=click.Path(dir_okay=False),
                           help="This client's CURVE secret certificate (arena keys: clients/NAME.key_secret)."
                           )(command)
    return click.option("--curve-server", metavar="FILE", type=click.Path(dir_okay=False),
                        help="The broker's CURVE public certificate (arena keys: server.key), "
                             "for a broker with CURVE on.")(command)


def curve_client(server: str | None, secret: str | None) -> CurveClient | None:
    if server is None and secret is None:
        return None
    if server is None or secret is None:
        raise click.UsageError("CURVE needs both --curve-server and --curve-secret")
    try:
        return CurveClient.load(server, secret)
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def curve_keys(directory: str | None, clients: tuple[str, ...]) -> CurveKeys | None:
    """An ``arena keys`` directory, checked: the server's files and these clients' keys load."""
    if directory is None:
        return None
    keys = CurveKeys(directory)
    try:
        keys.server()
        for name in clients:
            keys.client(name)
    except ValueError as error:
        raise click.ClickException(f"{error} (make the keys with: arena keys {directory})") from None
    return keys


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--client", "clients", multiple=True, metavar="NAME",
              help=f"Also make a key pair for this client (repeatable); always: {', '.join(DEFAULT_CLIENTS)}.")
def keys(directory: str, clients: tuple[str, ...]) -> None:
    """Make CURVE keys in DIRECTORY: the broker's key pair, a key pair per client, and
    the allow-list of client public keys. Existing keys are kept, so running it again
    with --client adds clients."""
    try:
        created = write_keys(directory, [*DEFAULT_CLIENTS, *clients])
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    layout = CurveKeys(directory)
    for path in created:
        click.echo(f"wrote {path}{' (secret, mode 0600)' if path.name.endswith('_secret') else ''}")
    if not created:
        click.echo(f"{directory}: every key is there already")
    client = f"--curve-server {layout.server_public} --curve-secret {layout.client_secret('NAME')}"
    click.echo(f"""
broker:    arena broker --curve-secret {layout.server_secret} --curve-allow {layout.allowed}
clients:   arena world|play|gateway|monitor|status ... {client}
one host:  arena up --curve {directory}
Python:    BaseAgent(..., curve=CurveClient.load("{layout.server_public}", "{layout.client_secret('NAME')}"))
A client needs server.key and its own clients/NAME.key_secret; only the broker needs
server.key_secret. Delete allowed/NAME.key (and restart the broker) to shut a client out.""")
