"""The ListenBrainz-compatible endpoint, driven by the off-the-shelf ``liblistenbrainz`` client
and by raw requests for the error answers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import liblistenbrainz
import pytest
from liblistenbrainz.errors import InvalidAuthTokenException, ListenBrainzAPIException

from tests.e2e.live import ADMIN_TOKEN, BOB_TOKEN, CAROL_TOKEN, LiveServer, execute, get, post

HISTORY = (
    "{ me { listens(first: 25) { totalCount nodes { listenedAt source track { title mbid } } } } }"
)


def lb_client(live: LiveServer, token: str) -> Any:
    client = liblistenbrainz.ListenBrainz(api_base_url=live.url)
    client.set_auth_token(token)  # checks the token with GET /1/validate-token
    return client


async def test_liblistenbrainz_submits_listens_that_show_up(live: LiveServer) -> None:
    """The ListenBrainz client library validates its token, submits a single listen, an import
    batch and a playing-now notice; the listens appear in the user's history, and submitting
    them again adds nothing."""
    now = int(time.time())
    single = liblistenbrainz.Listen(
        track_name="Strange",
        artist_name="Galaxie 500",
        listened_at=now - 600,
        recording_mbid="0b0b2a5c-3c2b-4a8e-9e8f-6f3d7c1a2b3c",
        release_name="On Fire",
    )
    batch = [
        liblistenbrainz.Listen(
            track_name=f"Blue Thunder {i}", artist_name="Galaxie 500", listened_at=now - 500 + i
        )
        for i in range(3)
    ]
    playing = liblistenbrainz.Listen(track_name="Fourth of July", artist_name="Galaxie 500")

    def submit() -> list[Any]:
        client = lb_client(live, CAROL_TOKEN)
        return [
            client.submit_single_listen(single),
            client.submit_multiple_listens(batch),
            client.submit_playing_now(playing),
        ]

    before = (await execute(live, HISTORY, token=CAROL_TOKEN))["me"]["listens"]["totalCount"]
    answers = await asyncio.to_thread(submit)
    assert answers == [{"status": "ok"}] * 3
    listens = (await execute(live, HISTORY, token=CAROL_TOKEN))["me"]["listens"]
    assert listens["totalCount"] == before + 4  # playing_now is not a listen
    titles = {n["track"]["title"]: n for n in listens["nodes"]}
    assert titles["Strange"]["track"]["mbid"] == "0b0b2a5c-3c2b-4a8e-9e8f-6f3d7c1a2b3c"
    assert titles["Strange"]["listenedAt"] == now - 600
    assert "Fourth of July" not in titles
    await asyncio.to_thread(submit)
    again = (await execute(live, HISTORY, token=CAROL_TOKEN))["me"]["listens"]["totalCount"]
    assert again == before + 4


async def test_liblistenbrainz_rejects_a_bad_token(live: LiveServer) -> None:
    """The client library learns from validate-token that a wrong token is invalid."""
    with pytest.raises(InvalidAuthTokenException):
        await asyncio.to_thread(lb_client, live, "mg_wrong")


async def test_validate_token_answers(live: LiveServer) -> None:
    """validate-token answers valid with the user name, invalid for a wrong or admin token."""
    ok = await get(live, "/1/validate-token", headers={"Authorization": f"Token {BOB_TOKEN}"})
    assert ok.json() == {"code": 200, "message": "Token valid.", "valid": True, "user_name": "bob"}
    by_param = await get(live, "/1/validate-token", params={"token": BOB_TOKEN})
    assert by_param.json()["valid"] is True
    for token in ("mg_wrong", ADMIN_TOKEN):
        bad = await get(live, "/1/validate-token", params={"token": token})
        assert bad.json() == {"code": 200, "message": "Token invalid.", "valid": False}
    missing = await get(live, "/1/validate-token")
    assert missing.status_code == 400 and missing.json()["code"] == 400


def listen(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "listened_at": int(time.time()) - 60,
        "track_metadata": {"artist_name": "Codeine", "track_name": "D"},
    }
    item.update(overrides)
    return item


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"payload": [listen()]}, "listen_type"),
        ({"listen_type": "single"}, "payload"),
        ({"listen_type": "single", "payload": []}, "any listens"),
        ({"listen_type": "single", "payload": [listen(), listen()]}, "exactly one listen"),
        ({"listen_type": "playing_now", "payload": [listen()]}, "listened_at"),
        ({"listen_type": "import", "payload": [listen(listened_at=None)]}, "payload[0]"),
        (
            {"listen_type": "import", "payload": [listen(), listen(listened_at=4102444800)]},
            "payload[1] listened_at: timestamp in the future",
        ),
        (
            {
                "listen_type": "import",
                "payload": [listen(track_metadata={"artist_name": "Codeine"})],
            },
            "missing title",
        ),
        ({"listen_type": "import", "payload": [listen() for _ in range(21)]}, "Too many listens"),
        ([1, 2], "Invalid JSON document"),
    ],
)
async def test_bad_submissions_are_400_and_store_nothing(
    live: LiveServer, body: Any, error: str
) -> None:
    """Each malformed submission is answered 400 with a ListenBrainz-shaped error that says what
    was wrong, and none of its listens are stored."""
    before = (await execute(live, HISTORY, token=BOB_TOKEN))["me"]["listens"]["totalCount"]
    r = await post(
        live, "/1/submit-listens", json=body, headers={"Authorization": f"Token {BOB_TOKEN}"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == 400 and error in r.json()["error"]
    after = (await execute(live, HISTORY, token=BOB_TOKEN))["me"]["listens"]["totalCount"]
    assert after == before


@pytest.mark.parametrize("header", [None, "Token mg_wrong", f"Token {ADMIN_TOKEN}"])
async def test_submissions_need_a_user_token(live: LiveServer, header: str | None) -> None:
    """Without a user's token (none, a wrong one, or the admin's, which names no user) the
    endpoint answers 401 in ListenBrainz's shape."""
    headers = {"Authorization": header} if header else {}
    r = await post(
        live,
        "/1/submit-listens",
        json={"listen_type": "single", "payload": [listen()]},
        headers=headers,
    )
    assert r.status_code == 401 and r.json()["code"] == 401 and r.json()["error"]


async def test_unparseable_json_is_400(live: LiveServer) -> None:
    """A body that is not JSON is a 400 naming the parse failure."""
    r = await post(
        live, "/1/submit-listens", content=b"{nope", headers={"Authorization": f"Token {BOB_TOKEN}"}
    )
    assert r.status_code == 400 and "Cannot parse JSON" in r.json()["error"]


async def test_client_library_sees_api_errors(live: LiveServer) -> None:
    """An error answer reaches the client library as its API exception with our message."""

    def submit_future() -> None:
        client = lb_client(live, BOB_TOKEN)
        client.submit_single_listen(
            liblistenbrainz.Listen(
                track_name="Later", artist_name="Codeine", listened_at=4102444800
            )
        )

    with pytest.raises(ListenBrainzAPIException) as caught:
        await asyncio.to_thread(submit_future)
    assert caught.value.status_code == 400 and "future" in caught.value.message
