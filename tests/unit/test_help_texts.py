"""What `--help` says about roles and exposure matches what the server does (issue 13 review: `--admin` still
promised deleting every audit after decision 175, `admin` spoke only of the data directory after `log --server`)."""

from __future__ import annotations

from effcap.clients.cli import _parser

from .test_connection_options import commands


def option_help(command: str, option: str) -> str:
    parser = commands(_parser())[command]
    return next(action.help for action in parser._actions if option in action.option_strings)


def test_an_admin_key_is_said_to_cancel_any_audit_not_to_delete_others():
    said = option_help("admin keys create", "--admin")
    assert "cancel any audit" in said and "delete every" not in said and "deleting stays each owner's" in said


def test_admin_help_names_the_running_server_as_well_as_the_data_directory():
    assert "running server" in commands(_parser())["admin"].format_help()


def test_serve_help_says_what_insecure_and_metrics_host_cover():
    assert "--metrics-host" in option_help("serve", "--insecure")
    metrics_host = option_help("serve", "--metrics-host")
    assert "mutual TLS" in metrics_host and "--tls-client-ca" in metrics_host
