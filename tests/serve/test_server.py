"""Starting the server: loopback by default, a token required for any other binding."""

import pytest

from sonorad.cli import main
from sonorad.errors import ConfigError
from sonorad.serve.server import allowed_hosts_for, check_binding, is_loopback


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.10", "::", "example.org"))


def test_network_binding_needs_a_token(tmp_path):
    check_binding("127.0.0.1", None, None)
    with pytest.raises(ConfigError, match="--token"):
        check_binding("0.0.0.0", None, None)
    check_binding("0.0.0.0", "a-long-enough-token", None)
    with pytest.raises(ConfigError, match="too short"):
        check_binding("0.0.0.0", "short", None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        check_binding("127.0.0.1", None, tmp_path / "file")


def test_cli_refuses_before_loading_anything(tmp_path, capsys):
    # The bundle path does not even exist: the binding is refused first, with exit status 2.
    assert main(["serve", str(tmp_path / "no-bundle"), "--host", "0.0.0.0"]) == 2
    assert "--token" in capsys.readouterr().err


def test_loopback_binding_accepts_only_local_host_names():
    assert "localhost" in allowed_hosts_for("127.0.0.1", 8000)
    assert allowed_hosts_for("0.0.0.0", 8000) is None
