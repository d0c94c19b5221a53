"""A polite HTTP client for the sources: timeouts, bounded retries with backoff, a budget.

Public APIs (Hugging Face, arXiv) rate-limit and blip. Retrying 429, 5xx and connection
errors with exponential backoff and jitter (honouring Retry-After) rides out a blip without
hammering the server; a per-run request budget stops a paging bug from becoming a flood.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.config import Settings

__all__ = ["BudgetExhausted", "PoliteClient", "RequestFailed", "user_agent"]

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 300.0  # seconds; a server asking for longer is treated as down for this run


class RequestFailed(DigestError):
    """A GET that gave no usable answer; ``reason`` says why in a few words, without the URL."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class BudgetExhausted(RequestFailed):
    """The source used up its requests for this run (DIGEST_HTTP_MAX_REQUESTS)."""


def user_agent(contact: str | None = None) -> str:
    """The User-Agent: who we are and where to find the operator, as API etiquette asks."""
    try:
        release = version("digest")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        release = "0"
    where = f"; +{contact}" if contact else ""
    return f"digest/{release} (self-hosted paper digest; python-httpx{where})"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class PoliteClient:
    """GET with timeouts, retries and a request budget; errors become one-line DigestErrors.

    ``backoff_base`` and ``sleep`` are injectable so tests keep retries instant.
    """

    def __init__(
        self,
        *,
        name: str,
        timeout: float = 20.0,
        retries: int = 4,
        max_requests: int = 50,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        client: httpx.Client | None = None,
        contact: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.retries = retries
        self.max_requests = max_requests
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.requests = 0
        self._owned = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": user_agent(contact)},
            follow_redirects=True,
        )
        if self._client.headers.get("User-Agent", "").startswith("python-httpx/"):
            # An injected client with httpx's default agent still says who we are.
            self._client.headers["User-Agent"] = user_agent(contact)

    @classmethod
    @contextlib.contextmanager
    def for_source(
        cls, name: str, settings: Settings, client: httpx.Client | PoliteClient | None = None
    ) -> Iterator[PoliteClient]:
        """A client configured by DIGEST_HTTP_*, closed afterwards if it was made here.

        An injected PoliteClient is used as is (its request count carries on); an injected
        httpx client is wrapped and left open for its owner.
        """
        if isinstance(client, PoliteClient):
            yield client
            return
        with cls(
            name=name,
            timeout=settings.http_timeout,
            retries=settings.http_retries,
            max_requests=settings.http_max_requests,
            client=client,
            contact=str(settings.base_url),
        ) as made:
            yield made

    @property
    def httpx_client(self) -> httpx.Client:
        """The httpx client underneath, for a second PoliteClient with a budget of its own."""
        return self._client

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(
        self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying httpx client if this object created it."""
        if self._owned:
            self._client.close()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        asked = _retry_after(response) if response is not None else None
        if asked is not None:
            return asked
        # "Equal jitter": half the exponential step fixed, half random, so retries from many
        # installations spread out but each still waits at least half the step.
        step = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return step / 2 + random.uniform(0, step / 2)

    def get(self, url: str, params: Mapping[str, str | int] | None = None) -> httpx.Response:
        """GET ``url``; retries 429/5xx/connection errors; returns any other response.

        Raises DigestError when retries or the request budget run out.
        """
        attempt = 0
        while True:
            if self.requests >= self.max_requests:
                reason = (
                    f"stopped after {self.requests} requests "
                    f"(DIGEST_HTTP_MAX_REQUESTS={self.max_requests})"
                )
                raise BudgetExhausted(f"{self.name}: {reason}", reason)
            self.requests += 1
            response: httpx.Response | None = None
            try:
                response = self._client.get(url, params=params)
            except httpx.TimeoutException:
                problem = "timed out"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__})"
            else:
                if response.status_code not in RETRY_STATUS:
                    return response
                problem = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
            shown = _shown(url)
            if attempt >= self.retries:
                tries = "attempt" if attempt == 0 else "attempts"
                reason = f"{problem} after {attempt + 1} {tries}"
                raise RequestFailed(f"{self.name}: GET {shown} {reason}", reason)
            delay = self._delay(attempt, response)
            if delay > MAX_RETRY_AFTER:
                reason = f"{problem}; the server asks to wait {delay:.0f} s"
                raise RequestFailed(f"{self.name}: GET {shown} {reason}", reason)
            log.warning(
                "source=%s url=%s problem=%r retry_in=%.2fs attempt=%d",
                self.name,
                shown,
                problem,
                delay,
                attempt + 1,
            )
            self.sleep(delay)
            attempt += 1


def _shown(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."
