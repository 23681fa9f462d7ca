"""One request in, one response out: raw sys routes, the core, Vault's envelope."""

from __future__ import annotations

import base64
import http.client
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strongroom.core.core import Core
from strongroom.core.request import Request, Response
from strongroom.core.token_format import render_auth
from strongroom.errors import (
    LoginFailedError,
    SealedError,
    StrongroomError,
    UnsupportedOperationError,
)
from strongroom.ha.drain import GATE
from strongroom.ha.forwarding import (
    NOT_ACTIVE_BODY,
    NOT_RELAYED_HEADER,
    NotDelivered,
    not_relayed,
)
from strongroom.ha.standby import StandbyRouter, forwarded_by_cluster
from strongroom.ha.state import HAStatus
from strongroom.http.edge import (
    TOO_LARGE,
    HttpRequest,
    api_path,
    operation,
    request_data,
    request_token,
    wrap_ttl,
)
from strongroom.http.sys_routes import ACTIVE_ONLY_RAW, RAW_ROUTES
from strongroom.jsoncodec import dumps

log = logging.getLogger(__name__)
JSON = "application/json"
# A standby forwards the client's TLS certificate (base64 DER) with the request, as
# Vault's forwarded requests carry the peer certificates: cert logins and renewals
# work through any node. Believed only beside the node secret of the cluster relay.
CLIENT_CERT_HEADER = "X-Strongroom-Forwarded-Client-Cert"
_CLIENT_CERT_KEY = CLIENT_CERT_HEADER.lower()
# Likewise the client's address (Vault's forwarded requests keep the original
# RemoteAddr): a token's bound CIDRs, a method's login-time CIDRs and the login
# guard's per-client count judge the client, not the standby that relayed it.
CLIENT_ADDR_HEADER = "X-Strongroom-Forwarded-Client-Addr"
_CLIENT_ADDR_KEY = CLIENT_ADDR_HEADER.lower()
_RELAY_ONLY = (_CLIENT_CERT_KEY, _CLIENT_ADDR_KEY)


def forward_headers(req: HttpRequest) -> dict[str, str]:
    """The headers a standby forwards: the client's, with the certificate and the
    address this node's listener saw in place of any the client wrote itself."""
    headers = {k: v for k, v in req.headers.items() if k not in _RELAY_ONLY}
    if req.client_cert_der:
        headers[CLIENT_CERT_HEADER] = base64.b64encode(req.client_cert_der).decode("ascii")
    if req.remote_addr:
        headers[CLIENT_ADDR_HEADER] = req.remote_addr
    return headers


def client_addr(req: HttpRequest) -> str:
    """The client's address: the listener's peer, or the one a standby of this cluster
    forwarded (a client's own header is ignored)."""
    forwarded = req.headers.get(_CLIENT_ADDR_KEY)
    if forwarded is None or not forwarded_by_cluster(req.headers):
        return req.remote_addr
    return forwarded


def client_cert(req: HttpRequest) -> bytes | None:
    """The request's client certificate: the listener's, or one a standby of this
    cluster forwarded (a client's own header is ignored)."""
    forwarded = req.headers.get(_CLIENT_CERT_KEY)
    if forwarded is None or not forwarded_by_cluster(req.headers):
        return req.client_cert_der
    try:
        return base64.b64decode(forwarded, validate=True) or None
    except ValueError:
        return None


@dataclass
class HttpResult:
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds the front end waits before answering (a failed login's backoff,
    # errors.LoginFailedError): awaited on the event loop, never slept on it.
    delay: float = 0.0


def envelope(resp: Response, request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "lease_id": resp.lease_id,
        "renewable": resp.renewable,
        "lease_duration": resp.lease_duration,
        "data": resp.data,
        "wrap_info": resp.wrap_info,
        "warnings": resp.warnings or None,
        "auth": render_auth(resp.auth) if resp.auth is not None else None,
        "mount_type": resp.mount_type,
    }


LEADER_WAIT = 3.0
# A request the active refused without carrying it out (stepping down, stopping) follows
# the leadership to the next active: at most this many sends in all.
FORWARD_ATTEMPTS = 3
# Operations on the node itself: a standby performs them, never its active node.
NODE_LOCAL = frozenset({"sys/seal", "sys/step-down"})


def _standby_unavailable() -> HttpResult:
    return error_result(500, ["local node not active but active cluster node not found"])


def error_result(status: int, messages: list[str]) -> HttpResult:
    return HttpResult(status, dumps({"errors": messages}))


# Answers both front ends (http/app.py, http/asgi.py) give before dispatching.
NOT_FOUND_RESULT = error_result(404, [])
TOO_LARGE_RESULT = error_result(413, [TOO_LARGE])
# Off by default: lets multi-worker tests see which process answered.
WORKER_HEADER = os.environ.get("STRONGROOM_DEBUG_WORKER_HEADER") == "1"


class Dispatcher:
    def __init__(self, core: Core, switched_off: frozenset[str] = frozenset()) -> None:
        self.core = core
        self.standby = StandbyRouter(core.barrier)
        # Raw routes the listener turned off (http/sys_routes.py::switched_off).
        self.switched_off = switched_off

    def dispatch(self, req: HttpRequest) -> HttpResult:
        try:
            return self._dispatch(req)
        except LoginFailedError as exc:
            result = error_result(exc.status, [exc.message])
            result.delay = exc.delay
            return result
        except StrongroomError as exc:
            # A bare 404 (nothing stored at a path) is Vault's {"errors": []}.
            return error_result(exc.status, [exc.message] if exc.message else [])
        except Exception:  # noqa: BLE001 - the edge answers 500, never a traceback
            log.exception("event=unhandled_error method=%s", req.method)
            return error_result(500, ["internal error"])

    def _dispatch(self, req: HttpRequest) -> HttpResult:
        req.path = api_path(req.path)
        raw = RAW_ROUTES.get(req.path.rstrip("/"))
        if raw is not None and req.path.rstrip("/") in self.switched_off:
            # What OpenBao answers for a switched-off route: the logical path has no such
            # operation, or (recovery rekey) no such path; a sealed node says so first.
            if self.core.sync().sealed:
                raise SealedError()
            if req.path.startswith("sys/rekey-recovery-key/"):
                return error_result(404, ["unsupported path"])
            raise UnsupportedOperationError("unsupported operation")
        if raw is not None and req.path.rstrip("/") in ACTIVE_ONLY_RAW:
            ha = self.core.sync().ha
            if ha.standby and not self.core.snapshot.sealed:
                if forwarded_by_cluster(req.headers):
                    return HttpResult(503, NOT_ACTIVE_BODY, {NOT_RELAYED_HEADER: "1"})
                return self._from_standby(req, ha)
        if raw is not None:
            status, body = raw(req, self.core)
            if body is None or req.method == "HEAD":
                return HttpResult(status)
            return HttpResult(status, dumps(body))
        ha = self.core.sync().ha
        if ha.standby and not self.core.snapshot.sealed and req.path not in NODE_LOCAL:
            if forwarded_by_cluster(req.headers):
                # Relayed by our cluster port just before this node stepped down: refuse
                # it, uncarried out, so the standby that sent it tries the new active.
                return HttpResult(503, NOT_ACTIVE_BODY, {NOT_RELAYED_HEADER: "1"})
            return self._from_standby(req, ha)
        gate = GATE["gate"]
        if not ha.active or gate is None:
            return self._dispatch_local(req)
        if not gate.enter():
            # Stepping down: this request goes to the next active node, not into a
            # write the fence would cut off.
            return self._after_step_down(req)
        try:
            return self._dispatch_local(req)
        finally:
            gate.exit()

    def _after_step_down(self, req: HttpRequest) -> HttpResult:
        """Wait (up to LEADER_WAIT) for this node to have stepped down, then forward."""
        if forwarded_by_cluster(req.headers):
            # Relayed by our cluster port: not carried out; the standby that sent it
            # sends it to the next active node itself.
            return HttpResult(503, NOT_ACTIVE_BODY, {NOT_RELAYED_HEADER: "1"})
        ha = self._await(self.core.sync().ha, lambda status: not status.active)
        if not ha.standby:
            return _standby_unavailable()
        return self._from_standby(req, ha)

    def _dispatch_local(self, req: HttpRequest) -> HttpResult:
        core_req = Request(
            operation=operation(req),
            path=req.path,
            data=request_data(req),
            token=request_token(req),
            headers=req.headers,
            remote_addr=client_addr(req),
            remote_port=req.remote_port,
            wrap_ttl=wrap_ttl(req),
            client_cert_der=client_cert(req),
        )
        result = self.core.handle(core_req)
        if result.raw:
            raw_body = None if result.data is None else dumps(result.data)
            return HttpResult(result.status, raw_body)
        if result.data is None and result.auth is None and result.wrap_info is None and not (
            result.warnings
        ) and result.status in (200, 202):
            # Nothing to say: 204, or an accepted request's bare 202 (Vault's lazy revoke).
            return HttpResult(204 if result.status == 200 else result.status)
        # A wrapped response belongs to whoever unwraps it: Vault gives it no request id.
        body = envelope(result, "" if result.wrap_info else core_req.request_id)
        return self._enveloped(result, body)

    def _enveloped(self, result: Response, body: dict[str, Any]) -> HttpResult:
        if result.legacy_top_level and result.data:
            body = {**result.data, **body}
        return HttpResult(result.status, dumps(body))

    def _from_standby(self, req: HttpRequest, ha: HAStatus) -> HttpResult:
        # Right after a leadership change the new active may not be known for a moment:
        # wait briefly rather than fail a request a client would only have to retry.
        ha = self._await_leader(ha, lambda status: bool(status.leader_api_addr))
        if not ha.standby:
            return self._dispatch_local(req)
        if not ha.leader_api_addr:
            return _standby_unavailable()
        if self.standby.wants_redirect(req.headers):
            location = self.standby.redirect_location(ha, req.path, req.params)
            return HttpResult(307, None, {"Location": location})
        for _attempt in range(FORWARD_ATTEMPTS):
            tried = _leader_key(ha)
            try:
                answer = self.standby.forward(ha, req.method, req.path, req.params,
                                              forward_headers(req), req.body)
            except NotDelivered:
                answer = None  # never sent: safe to send to whoever is active next
            except (OSError, http.client.HTTPException) as exc:
                # The request may have reached the active: never sent twice. Vault would
                # fall back to a 307 to the active's api_addr; here that sends the client
                # to a master that may be gone while its workers linger: answer.
                log.warning("event=forwarding_failed leader=%s error=%s", ha.leader_id,
                            type(exc).__name__)
                return _standby_unavailable()
            if answer is not None and not not_relayed(answer[0], answer[2]):
                status, body, headers = answer
                kept = {k: v for k, v in headers.items() if k == "location"}
                return HttpResult(status, body or None, kept)
            # The active is stepping down, stopping or gone, and did not carry the request
            # out: wait for the next active node and send it there.
            ha = self._await_leader(ha, _other_leader_than(tried))
            if not ha.standby:
                return self._dispatch_local(req)
            if _leader_key(ha) == tried or not ha.leader_api_addr:
                break
        log.warning("event=forwarding_failed leader=%s error=not_delivered", ha.leader_id)
        return _standby_unavailable()

    def _await_leader(self, ha: HAStatus, ready: Callable[[HAStatus], bool]) -> HAStatus:
        """This node's HA status once ``ready`` (or it is no longer a standby), or as it
        is after LEADER_WAIT."""
        return self._await(ha, lambda status: not status.standby or ready(status))

    def _await(self, ha: HAStatus, done: Callable[[HAStatus], bool]) -> HAStatus:
        """This node's HA status once ``done`` holds, or as it is after LEADER_WAIT."""
        deadline = time.monotonic() + LEADER_WAIT
        while not done(ha) and time.monotonic() < deadline:
            time.sleep(0.01)
            ha = self.core.sync().ha
        return ha


def _leader_key(ha: HAStatus) -> tuple[str, str]:
    return ha.leader_id, ha.leader_cluster_addr


def _other_leader_than(tried: tuple[str, str]) -> Callable[[HAStatus], bool]:
    return lambda status: bool(status.leader_api_addr) and _leader_key(status) != tried
