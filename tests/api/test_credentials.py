"""One credential per person and per source: issued, identified by token only, rotated and revoked at once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from guard.api.credentials import CredentialStore, Scope
from guard.errors import BadInput


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_added_credentials_are_identified_by_their_token_only(tmp_path: Path) -> None:
    """Each token names its own holder and scope; an unknown token names nobody."""
    store = CredentialStore(tmp_path)
    alice = store.add("alice", Scope.OPERATOR)
    bot = store.add("freqtrade", Scope.SOURCE)
    assert store.identify(alice) == store.identify(alice)
    who = store.identify(alice)
    assert who is not None and (who.name, who.credential, who.scope) == ("alice", "alice", Scope.OPERATOR)
    source = store.identify(bot)
    assert source is not None and source.scope is Scope.SOURCE
    assert store.identify("not-a-token") is None
    assert store.token_file("alice", Scope.OPERATOR).read_text().strip() == alice
    for path in (store.path, store.token_file("alice", Scope.OPERATOR), store.token_file("freqtrade", Scope.SOURCE)):
        assert _mode(path) == 0o600
    assert alice not in store.path.read_text() and bot not in store.path.read_text()  # only their hashes


def test_rotate_and_revoke_take_effect_for_a_store_already_reading(tmp_path: Path) -> None:
    """A daemon's store sees a CLI's rotation and revocation without a restart."""
    daemon_view = CredentialStore(tmp_path)
    cli = CredentialStore(tmp_path)
    old = cli.add("bob", Scope.OPERATOR)
    assert daemon_view.identify(old) is not None
    new = cli.rotate("bob")
    assert daemon_view.identify(old) is None
    assert daemon_view.identify(new) is not None
    cli.revoke("bob")
    assert daemon_view.identify(new) is None
    assert not cli.token_file("bob", Scope.OPERATOR).exists()
    assert [c.name for c in daemon_view.entries() if not c.active] == ["bob"]


@pytest.mark.parametrize("name", ["Alice", "", "shared", "a b", "x" * 65, "../etc", "-dash"])
def test_bad_or_reserved_names_are_refused(tmp_path: Path, name: str) -> None:
    """Names are short lowercase identifiers; the shared token's name and guard's own words are reserved."""
    with pytest.raises(BadInput, match="credential name"):
        CredentialStore(tmp_path).add(name, Scope.OPERATOR)


def test_a_name_is_issued_once(tmp_path: Path) -> None:
    """A second `add` of an active name is refused with what to do instead."""
    store = CredentialStore(tmp_path)
    store.add("carol", Scope.OPERATOR)
    with pytest.raises(BadInput, match="rotate carol"):
        store.add("carol", Scope.SOURCE)
