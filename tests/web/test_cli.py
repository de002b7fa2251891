"""``agi-server users ...`` and ``tokens ...`` on a real Redis."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from agi_server.cli import main


@pytest.fixture
def config(tmp_path, redis_server):
    import redis

    redis.Redis(unix_socket_path=str(redis_server.socket)).flushdb()
    path = tmp_path / "config.yaml"
    path.write_text(f'redis: {{url: "{redis_server.url}"}}\ndata_dir: ./var\n'
                    'departments:\n  support: {extensions: ["5050"], helpers: ["300"]}\n')  # fmt: skip
    return str(path)


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_users_add_list_passwd_remove(config):
    out = run("users", "add", "ali", "--role", "operator", "--extension", "5050", "-c", config,
              "--password-stdin", input="a good password\n")  # fmt: skip
    assert out.exit_code == 0 and "user ali added (operator)" in out.output
    # From a terminal: asked twice; a mismatch is asked again.
    out = run("users", "add", "root", "--role", "admin", "-c", config,
              input="first password\nother password\nfirst password\nfirst password\n")  # fmt: skip
    assert out.exit_code == 0, out.output
    listing = run("users", "list", "-c", config).output
    assert "ali" in listing and "5050" in listing and "root" in listing
    assert run("users", "passwd", "ali", "--password-stdin", "-c", config, input="another one!\n").exit_code == 0
    assert run("users", "remove", "ali", "-c", config).exit_code == 0
    assert "ali" not in run("users", "list", "-c", config).output


@pytest.mark.parametrize("args, message", [
    (["--role", "operator"], "at least one --extension"),
    (["--role", "supervisor", "--department", "nope"], "no department 'nope'"),
    (["--role", "operator", "--extension", "5050&x"], "not an extension"),
])  # fmt: skip
def test_users_add_refuses_bad_records_before_asking_a_password(config, args, message):
    out = run("users", "add", "x", *args, "-c", config)
    assert out.exit_code == 1 and message in out.output


def test_short_password_is_refused_and_no_password_on_argv(config):
    out = run("users", "add", "x", "--role", "admin", "--password-stdin", "-c", config, input="short\n")
    assert out.exit_code == 1 and "at least 8" in out.output
    assert run("users", "add", "x", "--role", "admin", "--password", "p", "-c", config).exit_code == 2


def test_tokens_add_prints_the_token_once_and_list_never(config):
    out = run("tokens", "add", "crm", "--scope", "calls:read", "--scope", "calls:write", "-c", config)
    assert out.exit_code == 0
    token = out.output.splitlines()[0]
    assert token.startswith("agi_") and len(token) == 47
    listing = run("tokens", "list", "-c", config).output
    assert "crm" in listing and "calls:read calls:write" in listing and token not in listing
    assert run("tokens", "add", "bad", "--scope", "everything", "-c", config).exit_code == 2
    assert run("tokens", "remove", "crm", "-c", config).exit_code == 0
    assert run("tokens", "remove", "crm", "-c", config).exit_code == 1
