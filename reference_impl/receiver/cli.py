"""`bounceback receiver`: the reference callback receiver under waitress, or gunicorn workers."""

from __future__ import annotations

import logging

import click

from reference_impl.protocol.links import LinkKeyError, parse_link_key
from reference_impl.receiver.access import check_exposure
from reference_impl.receiver.app import DEFAULT_MAX_BODY_BYTES, ReceiverConfig, create_app
from reference_impl.receiver.dashboard.stream import slots_for
from reference_impl.receiver.server import (
    DEFAULT_REQUEST_TIMEOUT,
    BackgroundServer,
    ServerError,
    callback_url,
    masked_callback_url,
)
from reference_impl.receiver.stores import describe


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8025, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--db",
    "db_path",
    default="bounceback.sqlite3",
    show_default=True,
    help="SQLite file (a path or sqlite:///PATH, created if missing) or a PostgreSQL database"
    " (postgresql://user@host/dbname, its tables created or upgraded) for callbacks, events and"
    " profiles.",
)
@click.option(
    "--token",
    default=None,
    envvar="BOUNCEBACK_TOKEN",
    help="Secret path segment: the URL becomes /callback/TOKEN. Also guards the read API unless"
    " --read-token is given. [env: BOUNCEBACK_TOKEN]",
)
@click.option(
    "--read-token",
    default=None,
    envvar="BOUNCEBACK_READ_TOKEN",
    help="Bearer token the read API (/api/...) asks for; defaults to --token."
    " [env: BOUNCEBACK_READ_TOKEN]",
)
@click.option(
    "--public-read",
    is_flag=True,
    help="Serve the dashboard and read API without a token even on a --host beyond loopback"
    " (refused otherwise); a reset still needs the token.",
)
@click.option(
    "--show-token",
    is_flag=True,
    help="Print the callback URL with its token at start (it is masked otherwise).",
)
@click.option(
    "--request-timeout",
    default=DEFAULT_REQUEST_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds a request's headers and body may take to arrive; slower ones are cut off.",
)
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(1),
    help="Larger request bodies get 413.",
)
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes serving requests (gunicorn) on one PostgreSQL --db; 1 is waitress in this"
    " process, the only choice on SQLite.",
)
@click.option(
    "--link-key",
    "link_keys",
    multiple=True,
    envvar="BOUNCEBACK_LINK_KEYS",
    show_envvar=True,
    metavar="ID=SECRET",
    help="A key the preference page verifies signed links with (repeat to keep old keys after a"
    " rotation; in the variable, separate several by spaces). Without one, every preference link"
    " is refused.",
)
def receiver(
    host: str,
    port: int,
    db_path: str,
    token: str | None,
    read_token: str | None,
    public_read: bool,
    show_token: bool,
    request_timeout: float,
    max_body_bytes: int,
    threads: int,
    workers: int,
    link_keys: tuple[str, ...],
) -> None:
    """Run the reference v2 callback receiver (the platform's side).

    A store that cannot be opened, a port already taken, a malformed link key, --workers above
    1 on SQLite or a --host beyond loopback with no read token (and no --public-read) is one line
    on stderr, exit 2. Tokens never reach the log: the callback URL is
    printed masked unless --show-token is given.
    """
    keys = tuple(parse_link_key(text) for text in link_keys)
    ids = [key.key_id for key in keys]
    if len(set(ids)) != len(ids):
        raise LinkKeyError(f"link key ids must differ, got {', '.join(ids)}")
    config = ReceiverConfig(
        db_path,
        token,
        max_body_bytes,
        keys,
        read_token=read_token,
        public_read=public_read,
        stream_slots=slots_for(threads),
    )
    check_exposure(host, config.effective_read_token, public_read)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if workers > 1:
        _serve_workers(config, host, port, threads, workers, ids, show_token, request_timeout)
        return
    click.echo(f"Opening store {describe(db_path)}")
    app = create_app(config)
    try:
        server = BackgroundServer(app, host, port, threads, max_body_bytes, request_timeout)
    except ServerError as exc:
        app.extensions["bounceback_store"].close()
        raise ServerError(f"{exc}; choose another --port or stop the program using it") from exc
    _announce(server.url, config, ids, show_token)
    click.echo("Serving with waitress; press Ctrl+C to stop.")
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo("Stopped.")


def _announce(base: str, config: ReceiverConfig, key_ids: list[str], show_token: bool) -> None:
    shown = callback_url if show_token else masked_callback_url
    click.echo(f"Callback URL: {shown(base, config.token)}")
    guarded = " (Authorization: Bearer token)" if config.access.reads_guarded else ""
    click.echo(f"Dashboard:    {base}/{' (?token=READ_TOKEN once)' if guarded else ''}")
    click.echo(f"Read API:     {base}/api/events{guarded}")
    click.echo(f"OpenAPI:      {base}/openapi.json")
    if key_ids:
        click.echo(f"Preference links verified with key(s) {', '.join(key_ids)}")
    else:
        click.echo("No --link-key: the preference page refuses every link (see docs/receiver.md)")


def _serve_workers(
    config: ReceiverConfig,
    host: str,
    port: int,
    threads: int,
    workers: int,
    key_ids: list[str],
    show_token: bool,
    request_timeout: float,
) -> None:
    # Imported here: gunicorn is loaded only by the command that runs it.
    from reference_impl.receiver import workers as w

    w.check_workers(config.db_path, workers)
    click.echo(f"Opening store {describe(config.db_path)}")
    w.prepare(str(config.db_path))
    try:
        sock = w.listen(host, port)
    except ServerError as exc:
        raise ServerError(f"{exc}; choose another --port or stop the program using it") from exc
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{sock.getsockname()[1]}"

    def ready() -> None:
        _announce(base, config, key_ids, show_token)
        click.echo(f"Serving with gunicorn, {workers} worker processes; press Ctrl+C to stop.")

    w.WorkerServer(config, sock, workers, threads, ready, request_timeout).run()
