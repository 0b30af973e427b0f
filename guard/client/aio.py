"""The asyncio client a program uses to propose through guard and learn what a person decided.

    client = AsyncGuardClient(source="my-bot")            # or GUARD_SOURCE / GUARD_TOKEN / GUARD_HOME
    pid = await client.propose("BTC/USDT:USDT", "buy", qty=Decimal("0.01"), why="breakout above 50k")
    decision = await client.wait_decision(pid, timeout=120)
    if decision.filled: ...                                # Filled(price, qty); else Rejected/Expired/...

It speaks the control API with a source's credential: `POST /v1/commands` (Propose, the only command a source
may send), `GET /v1/proposals/{id}`, `GET /v1/proposals` and `GET /v1/account`. Only the fields that are set
are sent, so the same client works with daemons that know more or fewer optional fields.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from guard import codec
from guard.api.client import ApiClient, Endpoint
from guard.api.protocol import OPERATOR_HEADER, PROTOCOL_VERSION, Reply
from guard.api.source_views import AccountView, ProposalFate, ProposalFates
from guard.client.connection import Connection, resolve
from guard.client.decisions import Decision, ProposalId, Refused, decision_of
from guard.client.errors import (
    AnswerLost,
    CredentialRefused,
    DaemonNotRunning,
    DecisionTimeout,
    GuardClientError,
    OutOfScope,
    ProposalRefused,
    UnknownProposal,
)
from guard.config import ApiSection
from guard.errors import DecodeError
from guard.paths import StatePaths

RETRY_SECONDS = 0.5
"""Before a command whose answer was lost is sent again (with the same id)."""
POLL_SECONDS = 0.25
"""How often `wait_decision` asks for the proposal's fate (loopback: each ask is a millisecond or two)."""
Number = Decimal | int | float | str


class AsyncGuardClient:
    """Proposes as one source and reads the fate of its own proposals. Never decides anything."""

    def __init__(
        self,
        source: str | None = None,
        *,
        home: str | Path | None = None,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """
        Args:
            source: the source's name (its token is `<home>/sources/NAME.token`); default `GUARD_SOURCE`.
            home: the daemon's state directory; default `GUARD_HOME`, else `./.guard`.
            url: where the daemon listens (`http://127.0.0.1:8765`, `unix:/path/guard.sock`); default `GUARD_URL`,
                else found in the state directory.
            token: the source's token itself; default `GUARD_TOKEN`, else read from the token file.
            timeout: how long one request may take, in seconds.
        """
        self._source, self._home, self._url, self._token = source, home, url, token
        self.timeout = timeout

    def connection(self) -> Connection:
        """Where the daemon is and whose token to show it, found afresh (a restarted daemon, a new token)."""
        return resolve(home=self._home, source=self._source, url=self._url, token=self._token)

    # --- proposing ---------------------------------------------------------------------

    async def propose(
        self,
        symbol: str,
        side: str,
        *,
        qty: Number | None = None,
        notional: Number | None = None,
        equity_fraction: Number | None = None,
        leverage: Number = 1,
        stop: Number | None = None,
        take_profit: Number | None = None,
        limit_price: Number | None = None,
        confidence: Number | None = None,
        why: str = "",
    ) -> ProposalId:
        """Propose a trade. guard prices it, checks every risk limit and queues it for a person to decide.

        Give exactly one size: `qty` (base units), `notional` (quote currency) or `equity_fraction` (0..1 of
        equity). `confidence` is your own claim (0..1): guard shows it as claimed until it has graded you.

        Returns:
            The proposal's id, for `wait_decision`.

        Raises:
            ProposalRefused: the desk would not queue it (the reason says why: a stale feed, nobody
                present to decide, trading halted, a field this daemon does not know).
            ValueError: not exactly one size given.
        """
        sizes = {"qty": qty, "notional": notional, "equity_fraction": equity_fraction}
        given = {k: v for k, v in sizes.items() if v is not None}
        if len(given) != 1:
            raise ValueError(f"give exactly one size: qty, notional or equity_fraction (got {sorted(given) or 'none'})")
        optional = {"stop": stop, "take_profit": take_profit, "limit_price": limit_price}
        frame: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "type": "Propose",
            "id": f"src-{uuid.uuid4().hex}",
            "symbol": symbol,
            "side": str(side).lower(),
            "leverage": _number(leverage),
            **{k: _number(v) for k, v in {**given, **optional}.items() if v is not None},
        }
        if confidence is not None:
            frame["confidence"] = _number(confidence)
        if why:
            frame["reason"] = why
        reply = await self._command(frame)
        if not reply.ok:
            raise ProposalRefused(reply.reason)
        return ProposalId(str(reply.data["proposal_id"]))

    async def ask(
        self,
        symbol: str,
        side: str,
        *,
        timeout: float,  # noqa: ASYNC109 - a budget for a person's answer, ended by DecisionTimeout
        **terms: Any,
    ) -> Decision:
        """Propose and wait for the outcome, as one value (a refusal by the desk is `Refused`).

        Raises:
            DecisionTimeout: still open after `timeout` seconds, as `wait_decision`.
        """
        try:
            pid = await self.propose(symbol, side, **terms)
        except ProposalRefused as e:
            return Refused(e.reason)
        return await self.wait_decision(pid, timeout)

    # --- reading -----------------------------------------------------------------------

    async def wait_decision(
        self,
        proposal_id: str,
        timeout: float,  # noqa: ASYNC109 - a budget for a person's answer, ended by DecisionTimeout
    ) -> Decision:
        """Wait until a person decided and the outcome is known (filled, rejected, expired, killed, failed).

        Raises:
            DecisionTimeout: still open after `timeout` seconds (it stays pending in guard until it expires).
            UnknownProposal: no such proposal of this source's.
        """
        deadline = time.monotonic() + timeout
        while True:
            fate = await self.proposal(proposal_id)
            decision = decision_of(fate)
            if decision is not None:
                return decision
            left = deadline - time.monotonic()
            if left <= 0:
                raise DecisionTimeout(proposal_id, timeout, fate.proposal.expires_at)
            await asyncio.sleep(min(POLL_SECONDS, left))

    async def proposal(self, proposal_id: str) -> ProposalFate:
        """One of this source's proposals and where it stands."""
        path = f"/v1/proposals/{quote(proposal_id, safe='')}"  # an id is a path segment, whatever it holds
        return codec.decode(ProposalFate, await self._get(path, proposal_id))

    async def my_proposals(self, limit: int = 50) -> tuple[ProposalFate, ...]:
        """This source's newest proposals (at most `limit`, up to 200), newest first."""
        return codec.decode(ProposalFates, await self._get(f"/v1/proposals?limit={int(limit)}")).proposals

    async def status(self) -> AccountView:
        """The trading state, whether a person is present, marks, feed health, positions and equity."""
        return codec.decode(AccountView, await self._get("/v1/account"))

    # --- the wire ------------------------------------------------------------------------

    async def _command(self, frame: dict[str, Any]) -> Reply:
        """Send a command; when the answer is lost (a timeout, a dropped connection), send it once more with the
        same id: the daemon carries out an id at most once and answers a repeat with its first answer, so a
        proposal is never queued twice."""
        connection = self.connection()
        headers = {OPERATOR_HEADER: connection.source} if connection.source else {}
        body = codec.encode(frame)
        try:
            status, text = await self._request(connection, "POST", "/v1/commands", body, headers)
        except (AnswerLost, DaemonNotRunning):
            await asyncio.sleep(RETRY_SECONDS)
            status, text = await self._request(connection, "POST", "/v1/commands", body, headers)
        try:
            reply = codec.decode(Reply, text)
        except DecodeError:
            raise GuardClientError(f"the daemon answered HTTP {status} with something else than a reply") from None
        if status == 400 and "unknown field" in reply.reason:
            return Reply(reply.id, False, f"{reply.reason} (this daemon is older than this client: upgrade guard)")
        return reply

    async def _get(self, path: str, proposal_id: str = "") -> str:
        status, text = await self._request(self.connection(), "GET", path)
        if status == 404 and proposal_id:
            raise UnknownProposal(f"no proposal {proposal_id!r} of this source's in guard")
        if status != 200:
            raise GuardClientError(f"the daemon answered HTTP {status}: {text[:300]}")
        return text

    async def _request(
        self, connection: Connection, method: str, path: str, body: bytes | None = None, headers: Any = None
    ) -> tuple[int, str]:
        api = _Api(connection, self.timeout)
        try:
            status, text = await api.send(method, path, body, headers)
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as e:
            raise DaemonNotRunning(
                f"nothing answers at {connection!r} ({type(e).__name__}): start the daemon with `guard up`"
            ) from e
        except TimeoutError as e:
            raise AnswerLost(f"the daemon did not answer within {self.timeout:g} s") from e
        if status == 401:
            raise CredentialRefused(
                f"the daemon refused the token of {connection!r}: it was revoked or rotated, or it belongs to another "
                "state directory; issue a new one with `guard source add NAME` (`guard source list` shows them)"
            )
        if status == 403:
            raise OutOfScope(f"{_error(text)} (a source proposes and reads its own proposals; a person decides)")
        if status >= 500:
            raise GuardClientError(f"the daemon failed (HTTP {status}): {_error(text)}; see its log")
        return status, text


class _Api(ApiClient):
    """The control API's client, showing a source's token where the daemon of `connection` listens."""

    def __init__(self, connection: Connection, timeout: float) -> None:
        super().__init__(ApiSection(), StatePaths(Path()), timeout)
        self._connection = connection

    def endpoint(self) -> Endpoint:
        c = self._connection
        return Endpoint(c.base_url, c.socket, c.token)

    async def send(self, method: str, path: str, body: bytes | None, headers: Any) -> tuple[int, str]:
        async with (
            self._http() as (http, endpoint),
            http.request(method, f"{endpoint.base_url}{path}", data=body, headers=headers) as response,
        ):
            return response.status, await response.text()


def _number(value: Number) -> str:
    """A decimal as the protocol carries it: its exact digits as text (a float goes through its repr)."""
    return str(Decimal(str(value)) if isinstance(value, float) else Decimal(value))


def _error(text: str) -> str:
    try:
        decoded = codec.decode(dict[str, str], text)
    except DecodeError:
        return text[:300]
    return decoded.get("error", text[:300])
