"""`effcap admin`: API keys and the activity log, read and written in a data directory's store.

These run on the server's machine against its data directory, not over the network: whoever can write
the data directory already owns everything in it, so no key is needed to make the first one.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from effcap.clients.errors import EffcapError

EXIT_OK = 0


def add_admin_command(commands: argparse._SubParsersAction) -> None:
    admin = commands.add_parser("admin", help="API keys and the activity log of a server's data directory")
    admin_commands = admin.add_subparsers(required=True, metavar="ADMIN_COMMAND")

    keys = admin_commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(required=True, metavar="KEYS_COMMAND")
    create = key_commands.add_parser("create", help="issue a key; its token is printed once, alone on the last line")
    create.add_argument("name", help="the principal the key authenticates (letters, digits, . _ @ -)")
    create.add_argument("--admin", action="store_true", help="the key's principal sees and may delete every audit")
    _add_data_dir(create)
    create.set_defaults(handler=_create_key)
    listing = key_commands.add_parser("list", help="every key: id, principal, role, created, revoked")
    _add_data_dir(listing)
    listing.set_defaults(handler=_list_keys)
    revoke = key_commands.add_parser("revoke", help="revoke a key by id, or every key of a principal by name")
    revoke.add_argument("key", help="a key id (from `keys list`) or a principal's name")
    _add_data_dir(revoke)
    revoke.set_defaults(handler=_revoke_key)

    log = admin_commands.add_parser("log", help="who created, cancelled and deleted what, and when")
    log.add_argument("--principal", help="only this principal's actions")
    log.add_argument("--limit", type=int, default=100, help="the newest N entries (default 100)")
    _add_data_dir(log)
    log.set_defaults(handler=_show_log)


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=Path("effcap-data"), help="the server's data directory (default ./effcap-data)"
    )


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
        console.print(f"revoked key {key.id} of {key.principal}", highlight=False)
    return EXIT_OK


def _show_log(args: argparse.Namespace, console: Console) -> int:
    from effcap.service.auth.activity import ActivityLog

    activity = ActivityLog(_store_path(args))
    try:
        entries = activity.recent(args.limit, args.principal)
    finally:
        activity.close()
    for entry in entries:
        sys.stdout.write(f"{_when(entry.time)}  {entry.principal:<33} {entry.action:<7} {entry.target}\n")
    return EXIT_OK


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
