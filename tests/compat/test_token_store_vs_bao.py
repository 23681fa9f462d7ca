"""The token store at the edges issue 12 touched, against OpenBao's dev server, side by
side: auth/token/tidy, LIST auth/token/accessors, and revoking a tree large enough for
Strongroom to delete it in the background (more than 100 tokens).

Observed: status codes, error messages and warnings (OpenBao's name replaced by ours),
the keys of data blocks; for the tree: every token refused right after the revoke
returns, and once Strongroom's background deletion is done, the same answers for the
revoked tokens' accessors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.servers import bao_dev_server, strongroom_dev_server

ROOT = "root"
TIMEOUT = 10
CHILDREN = 120
PRODUCT = ("OpenBao's", "Strongroom's")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with strongroom_dev_server(tmp_path_factory.mktemp("sr"), root_token=ROOT) as ours, \
            bao_dev_server(tmp_path_factory.mktemp("bao"), root_token=ROOT) as theirs:
        yield {"openbao": theirs.url, "strongroom": ours.url}


def call(url: str, method: str, path: str, body: Any = None, token: str = ROOT
         ) -> requests.Response:
    return requests.request(method, f"{url}/v1/{path}", json=body, timeout=TIMEOUT,
                            headers={"X-Vault-Token": token})


def observe(resp: requests.Response) -> tuple[Any, ...]:
    if not resp.content:
        return (resp.status_code,)
    body = resp.json()
    if "errors" in body:
        return resp.status_code, body["errors"]
    warnings = [w.replace(*PRODUCT) for w in body.get("warnings") or []]
    return resp.status_code, sorted(body["data"] or {}), warnings


def token(url: str, parent: str = ROOT, **body: Any) -> dict[str, Any]:
    resp = call(url, "POST", "auth/token/create", {"policies": ["default"], **body}, parent)
    assert resp.status_code == 200, resp.text
    return resp.json()["auth"]  # type: ignore[no-any-return]


def accessors(url: str) -> set[str]:
    return set(call(url, "LIST", "auth/token/accessors").json()["data"]["keys"])


def scenario(url: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    user = token(url)
    seen["tidy"] = observe(call(url, "POST", "auth/token/tidy"))
    seen["tidy_no_capability"] = observe(call(url, "POST", "auth/token/tidy",
                                              token=user["client_token"]))
    seen["tidy_read"] = observe(call(url, "GET", "auth/token/tidy"))
    seen["list_accessors_no_sudo"] = observe(call(url, "LIST", "auth/token/accessors",
                                                  token=user["client_token"]))
    seen["list_accessors"] = observe(call(url, "LIST", "auth/token/accessors"))
    seen["user_listed"] = user["accessor"] in accessors(url)

    parent = token(url, policies=["root"])
    children = [token(url, parent["client_token"]) for _ in range(CHILDREN)]
    seen["revoke"] = observe(call(url, "POST", "auth/token/revoke",
                                  {"token": parent["client_token"]}))
    seen["children_refused"] = {call(url, "GET", "auth/token/lookup-self",
                                     token=c["client_token"]).status_code for c in children}
    seen["parent_refused"] = observe(call(url, "GET", "auth/token/lookup-self",
                                          token=parent["client_token"]))
    seen["create_under_revoked"] = observe(call(url, "POST", "auth/token/create", {},
                                                children[0]["client_token"]))
    doomed = {parent["accessor"], *(c["accessor"] for c in children)}
    deadline = time.monotonic() + 60
    while doomed & accessors(url):  # Strongroom: until the owner has deleted the tree
        assert time.monotonic() < deadline, "the revoked tree was not deleted"
        time.sleep(0.1)  # poll interval
    seen["lookup_accessor_after"] = observe(call(url, "POST", "auth/token/lookup-accessor",
                                                 {"accessor": children[1]["accessor"]}))
    seen["revoke_accessor_after"] = observe(call(url, "POST", "auth/token/revoke-accessor",
                                                 {"accessor": children[2]["accessor"]}))
    seen["user_still_listed"] = user["accessor"] in accessors(url)
    return seen


def test_token_store_edges_match_openbao(servers: dict[str, str]) -> None:
    theirs, ours = scenario(servers["openbao"]), scenario(servers["strongroom"])
    assert theirs["children_refused"] == {403}
    assert ours == theirs
