"""`effcap admin`: API keys, written in a data directory's store, and the activity log, read there or remotely.

Keys are made and revoked on the server's machine against its data directory, not over the network: whoever
can write the data directory already owns everything in it, so no key is needed to make the first one. Each
is recorded in the activity log as done by `data-dir:USER` (auth/activity.py). The log is read there too, or
from anywhere with `--server` and an admin key (ListActivity).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from effcap.clients.credentials import connection_options_given
from effcap.clients.errors import EffcapError

if TYPE_CHECKING:
    from effcap.clients.sdk import EffcapClient

EXIT_OK = 0
DEFAULT_DATA_DIR = Path("effcap-data")


def add_admin_command(
    commands: argparse._SubParsersAction,
    add_connection: Callable[[argparse.ArgumentParser], None],
    connect: Callable[[argparse.Namespace], EffcapClient],
) -> None:
    """Register `effcap admin`; `add_connection` and `connect` are the CLI's --token/TLS options and client, for
    `admin log --server`."""
    about = "API keys of a server's data directory, and its activity log (read there, or from a running server)"
    admin = commands.add_parser("admin", help=about, description=about)
    admin_commands = admin.add_subparsers(required=True, metavar="ADMIN_COMMAND")

    keys = admin_commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(required=True, metavar="KEYS_COMMAND")
    create = key_commands.add_parser("create", help="issue a key; its token is printed once, alone on the last line")
    create.add_argument("name", help="the principal the key authenticates (letters, digits, . _ @ -)")
    create.add_argument(
        "--admin",
        action="store_true",
        help="the key's principal sees every audit and upload, may cancel any audit and reads the activity log "
        "(deleting stays each owner's)",
    )
    _add_data_dir(create)
    create.set_defaults(handler=_create_key)
    listing = key_commands.add_parser("list", help="every key: id, principal, role, created, revoked")
    _add_data_dir(listing)
    listing.set_defaults(handler=_list_keys)
    revoke = key_commands.add_parser("revoke", help="revoke a key by id, or every key of a principal by name")
    revoke.add_argument("key", help="a key id (from `keys list`) or a principal's name")
    _add_data_dir(revoke)
    revoke.set_defaults(handler=_revoke_key)

    log = admin_commands.add_parser(
        "log", help="who uploaded, created, cancelled and deleted what, and made or revoked keys, and when"
    )
    log.add_argument("--principal", help="only this principal's actions")
    log.add_argument("--limit", type=int, default=100, help="the newest N entries (default 100)")
    log.add_argument("--since", type=_instant, help="only entries at or after this time (ISO 8601; UTC unless it says)")
    log.add_argument("--until", type=_instant, help="only entries before this time (ISO 8601; UTC unless it says)")
    where = log.add_mutually_exclusive_group()
    where.add_argument("--data-dir", type=Path, help="read the server's data directory (default ./effcap-data)")
    where.add_argument("--server", metavar="HOST:PORT", help="ask a running server instead (needs an admin key)")
    add_connection(log)
    log.set_defaults(handler=_show_log, connect=connect)


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the server's data directory (default ./effcap-data)"
    )


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time such as 2026-12-01T09:30, got {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _record(args: argparse.Namespace, action: str, target: str) -> None:
    """Note a key change in the activity log, as the OS user who ran the command on the data directory."""
    from effcap.service.auth.activity import ActivityLog, data_dir_principal

    activity = ActivityLog(_store_path(args))
    try:
        activity.record(data_dir_principal(), action, target)
    finally:
        activity.close()


def _key_target(key) -> str:
    return f"keys/{key.id} ({key.principal}{', admin' if key.admin else ''})"


def _store_path(args: argparse.Namespace, create: bool = False) -> Path:
    """The store in --data-dir; only a first key may create the directory (before the first `effcap serve`)."""
    from effcap.service.auth.sqlite_file import STORE_FILE

    if not create and not args.data_dir.is_dir():
        raise EffcapError(f"--data-dir {args.data_dir}: no such directory", "INVALID_ARGUMENT", field="data_dir")
    return args.data_dir / STORE_FILE


def _create_key(args: argparse.Namespace, console: Console) -> int:
    from effcap.service.auth.keys import InvalidKeyName, KeyRing

    keys = KeyRing(_store_path(args, create=True))
    try:
        key, token = keys.create(args.name, admin=args.admin)
    except InvalidKeyName as error:
        raise EffcapError(str(error), "INVALID_ARGUMENT", field="name") from None
    finally:
        keys.close()
    _record(args, "create-key", _key_target(key))
    role = "admin" if key.admin else "user"
    console.print(f"key {key.id} for {key.principal} ({role}); the token below is shown only now:", highlight=False)
    sys.stdout.write(token + "\n")
    return EXIT_OK


def _list_keys(args: argparse.Namespace, console: Console) -> int:
    from effcap.service.auth.keys import KeyRing

    keys = KeyRing(_store_path(args))
    try:
        listed = keys.list()
    finally:
        keys.close()
    sys.stdout.write("id            principal                         role   created               revoked\n")
    for key in listed:
        revoked = _when(key.revoke_time) if key.revoked else "-"
        role = "admin" if key.admin else "user"
        sys.stdout.write(f"{key.id:<13} {key.principal:<33} {role:<6} {_when(key.create_time)}  {revoked}\n")
    return EXIT_OK


def _revoke_key(args: argparse.Namespace, console: Console) -> int:
    from effcap.service.auth.keys import KeyRing

    keys = KeyRing(_store_path(args))
    try:
        revoked = keys.revoke(args.key)
    finally:
        keys.close()
    if not revoked:
        raise EffcapError(f"no live key with id or principal {args.key!r}", "NOT_FOUND", field="key")
    for key in revoked:
        _record(args, "revoke-key", _key_target(key))
        console.print(f"revoked key {key.id} of {key.principal}", highlight=False)
    return EXIT_OK


def _show_log(args: argparse.Namespace, console: Console) -> int:
    """The newest --limit entries, printed oldest first (as a log reads), from the data dir or the server."""
    if args.limit < 1:
        raise EffcapError(f"--limit must be at least 1, got {args.limit}", "INVALID_ARGUMENT", field="limit")
    if args.since is not None and args.until is not None and args.until <= args.since:
        raise EffcapError("--until must be after --since", "INVALID_ARGUMENT", field="until")
    given = connection_options_given(args)
    if args.server is None and given:  # they would be ignored: the data directory is read, not a server called
        message = f"{' and '.join(given)} apply to --server HOST:PORT; --data-dir is read directly, with no connection"
        raise EffcapError(message, "INVALID_ARGUMENT", field=given[0].removeprefix("--").replace("-", "_"))
    if args.server is not None:
        with args.connect(args) as client:
            pages = client.activity(args.principal, args.since, args.until, page_size=min(args.limit, 1000))
            entries = [(entry.time.ToDatetime(UTC).timestamp(), entry) for entry in itertools.islice(pages, args.limit)]
    else:
        entries = [(entry.time, entry) for entry in _log_in_data_dir(args)]
    for seconds, entry in reversed(entries):
        sys.stdout.write(f"{_when(seconds)}  {entry.principal:<33} {entry.action:<10} {entry.target}\n")
    return EXIT_OK


def _log_in_data_dir(args: argparse.Namespace) -> list:
    from effcap.service.auth.activity import ActivityLog, ActivityQuery

    args.data_dir = args.data_dir or DEFAULT_DATA_DIR
    since, until = (moment.timestamp() if moment is not None else None for moment in (args.since, args.until))
    activity = ActivityLog(_store_path(args))
    try:
        return activity.page(args.limit, ActivityQuery(args.principal, since, until))
    finally:
        activity.close()


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
