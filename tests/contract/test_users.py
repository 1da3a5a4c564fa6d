"""Users: creation, unique case-insensitive names, tokens, batched lookups, listing."""

from __future__ import annotations

import pytest

from musicgraph.errors import ConflictError, NotFoundError, StoreError
from musicgraph.graph import identity
from musicgraph.graph.base import GraphStore
from musicgraph.graph.models import User

from .conftest import T0


async def test_create_user_returns_the_stored_user(store: GraphStore) -> None:
    """A created user has the id identity mints for its name and reads back unchanged."""
    user = await store.create_user("Alice", public=True, created_at=T0)
    assert user == User(id=identity.user_id_for("Alice"), name="Alice", created_at=T0, public=True)
    assert await store.get_users([user.id]) == [user]


async def test_user_names_are_unique_case_insensitively(store: GraphStore) -> None:
    """A second user whose name differs only in case is refused with ConflictError."""
    await store.create_user("Alice")
    with pytest.raises(ConflictError, match=r"(?i)alice"):
        await store.create_user("ALICE")
    assert await store.count_users() == 1


async def test_blank_user_name_is_refused(store: GraphStore) -> None:
    """A blank name raises StoreError and creates nothing."""
    with pytest.raises(StoreError):
        await store.create_user("   ")
    assert await store.count_users() == 0


async def test_unicode_names_round_trip(store: GraphStore) -> None:
    """Names in any script, with accents and emoji, are stored and found case-insensitively."""
    names = ["Sigur Rós", "坂本龍一", "Björk 🎵", "Ólafur Arnalds"]
    created = [await store.create_user(n) for n in names]
    assert [u.name for u in created] == names
    for n, u in zip(names, created, strict=True):
        assert await store.get_user_by_name(n.upper()) == u
    assert [u.name for u in await store.list_users()] == sorted(names, key=identity.normalise)


async def test_ensure_users_gets_or_creates_in_order(store: GraphStore) -> None:
    """ensure_users returns one user per name, in order, creating only the missing ones."""
    alice = await store.create_user("Alice", created_at=T0)
    users = await store.ensure_users(["bob", "ALICE", "Bob", "carol"])
    assert [u.name for u in users] == ["bob", "Alice", "bob", "carol"]
    assert users[1] == alice
    assert users[0] == users[2]
    assert await store.count_users() == 3
    assert await store.ensure_users([]) == []


async def test_get_users_keeps_order_and_gives_none_for_unknown(store: GraphStore) -> None:
    """Batched lookups return one entry per id, in order, None for unknown ids."""
    a = await store.create_user("a")
    b = await store.create_user("b")
    assert await store.get_users([b.id, "u_missing", a.id, b.id]) == [b, None, a, b]
    assert await store.get_users([]) == []


async def test_get_user_by_name_unknown_is_none(store: GraphStore) -> None:
    """Looking up a name nobody has returns None."""
    assert await store.get_user_by_name("nobody") is None


async def test_token_hash_lookup_and_replacement(store: GraphStore) -> None:
    """A user is found by their token hash until it is replaced or cleared."""
    alice = await store.create_user("Alice", token_hash="h1")
    assert await store.get_user_by_token_hash("h1") == alice
    await store.set_user_token_hash(alice.id, "h2")
    assert await store.get_user_by_token_hash("h1") is None
    assert await store.get_user_by_token_hash("h2") == alice
    await store.set_user_token_hash(alice.id, None)
    assert await store.get_user_by_token_hash("h2") is None


async def test_token_hash_of_unknown_user_is_not_found(store: GraphStore) -> None:
    """Setting the token of an unknown user raises NotFoundError."""
    with pytest.raises(NotFoundError):
        await store.set_user_token_hash("u_missing", "h")


async def test_set_user_public(store: GraphStore) -> None:
    """set_user_public flips the flag; an unknown user raises NotFoundError."""
    alice = await store.create_user("Alice")
    await store.set_user_public(alice.id, True)
    [stored] = await store.get_users([alice.id])
    assert stored is not None and stored.public
    with pytest.raises(NotFoundError):
        await store.set_user_public("u_missing", True)


async def test_list_users_pages_by_name(store: GraphStore) -> None:
    """list_users orders by name and honours offset and limit."""
    await store.ensure_users(["dave", "alice", "carol", "bob"])
    assert [u.name for u in await store.list_users()] == ["alice", "bob", "carol", "dave"]
    assert [u.name for u in await store.list_users(offset=1, limit=2)] == ["bob", "carol"]
    assert await store.list_users(offset=10) == []
    assert await store.count_users() == 4
