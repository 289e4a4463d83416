"""The Wikipedia client of the ``classes`` stage: a polite, fault-tolerant ``wikipediaapi.Wikipedia``.

Every request carries ``maxlag``; lag errors, HTTP 429, 5xx, temporary API errors (``readonly``,
``internal_api_error_*``), timeouts, dropped connections and garbled replies (undecodable, not
JSON, not a JSON object) are retried within a :class:`RetryPolicy`; anything else is a
:class:`WikipediaError`. See :mod:`imagenet_multimodal.wikipedia` for the collector that uses it.
"""

from __future__ import annotations

import email.utils
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
import wikipediaapi

from . import __version__
from .io import InputError

logger = logging.getLogger(__name__)

CONTACT_ENV = "IMAGENET_MULTIMODAL_CONTACT"
MIN_LAG_PAUSE = 5.0  # seconds; Wikimedia asks bots to pause at least this long on a lag error
# API error codes of a passing state of the servers (read-only during maintenance, an internal
# exception such as internal_api_error_DBQueryError): retried like HTTP 5xx.
TEMPORARY_API_ERRORS = ("readonly",)
TEMPORARY_API_ERROR_PREFIX = "internal_api_error_"
# Asked for with every page's extract, so that text and revision come from one reply.
PAGE_PROPS = {
    "prop": "extracts|info|revisions|pageprops",
    "inprop": "url",
    "rvprop": "ids|timestamp",
    "ppprop": "disambiguation",
}


# A section heading in the WIKI extract format: "== History ==", "=== Description ===".
_HEADING = re.compile(r"^ *==+ .*? ==+ *$", re.MULTILINE)
# where wikipediaapi starts a section: a heading after a blank line (a heading-shaped line without
# one stays in the text before it, so the summary must not end there either)
_SECTION_START = re.compile(r"\n\n *==+ .*? ==+ *(?:\n|$)")


class WikipediaError(RuntimeError):
    """A request to Wikipedia failed for good (after its retries), or the run cannot go on."""


class WikipediaUnreachable(WikipediaError):
    """Wikipedia could not be reached at all (no connection was ever made)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; waits are in seconds."""

    max_tries: int = 5
    backoff: float = 2.0  # first wait on a 5xx or timeout; doubled on each further try
    max_wait: float = 300.0
    maxlag: int = 5

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise InputError(f"--max-tries: expected at least 1, got {self.max_tries}")


class _Transient(Exception):
    """A failure worth retrying: ``wait`` is the server's advice in seconds, or None."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def user_agent(contact: str | None) -> str:
    """``imagenet-multimodal/VERSION (CONTACT)``; CONTACT must be a URL or an e-mail address."""
    contact = (contact or os.environ.get(CONTACT_ENV, "")).strip()
    if not contact:
        raise InputError(
            f"--contact: Wikimedia's User-Agent policy asks for a way to reach you; give a URL or an "
            f"e-mail address (or set ${CONTACT_ENV})"
        )
    if "@" not in contact and not contact.startswith(("http://", "https://")):
        raise InputError(f"--contact: expected a URL or an e-mail address, got {contact!r}")
    return f"imagenet-multimodal/{__version__} ({contact})"


class PoliteWikipedia(wikipediaapi.Wikipedia):
    """``wikipediaapi.Wikipedia`` whose every request goes through :meth:`_get` below.

    The library sends all its API calls through ``_get(language, params)``; this class replaces it
    with one that adds ``maxlag``, sends the request on the library's own httpx client (so a test can
    give a ``transport``), turns lag errors and other API errors into retries or
    :class:`WikipediaError` (the library would crash on a reply without ``query``), and retries with
    an injectable ``sleep``. The library's own retry loop is switched off (``max_retries=0``).
    """

    def __init__(
        self,
        agent: str,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        extra = {} if transport is None else {"transport": transport}
        super().__init__(
            user_agent=agent, language="en", extract_format=wikipediaapi.ExtractFormat.WIKI,
            max_retries=0, timeout=timeout, **extra,
        )
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.requests = 0
        self.last_reply: dict[str, Any] | None = None
        self._connected = False

    def api(self, params: dict[str, Any]) -> dict[str, Any]:
        """Send one MediaWiki action API query (``format=json`` added) with the retry rules."""
        return self._get(self.language, {"format": "json", **params})

    def extracts(self, page: wikipediaapi.WikipediaPage, **kwargs: Any) -> str:
        """The library's extracts call, asking in the same request for URL, revision and pageprops."""
        return super().extracts(page, **{**PAGE_PROPS, **kwargs})

    def _build_extracts(self, extract: Any, page: wikipediaapi.WikipediaPage) -> str:
        """The library's parse of a page's extract, with the lead (the text before the first heading)
        as the summary, also when it is empty.

        The library falls back to the whole extract, headings and "Description" included, when no
        text comes before the first heading; and it sees a heading only after a blank line, so a
        heading at the very start would be lost with its section.
        """
        text = extract.get("extract") if isinstance(extract, dict) else None
        if not isinstance(text, str):
            return super()._build_extracts(extract, page)  # its KeyError or TypeError says what is wrong
        if _HEADING.match(text.lstrip("\n")):
            text = "\n\n" + text.lstrip("\n")
            extract = {**extract, "extract": text}
        super()._build_extracts(extract, page)
        first = _SECTION_START.search(text)
        page._summary = (text[:first.start()] if first else text).strip()
        return page._summary

    def _get(self, language: str, params: dict[str, Any]) -> dict[str, Any]:
        url = self._build_url(language)
        params = {**params, "maxlag": self.policy.maxlag}
        tries, attempt = self.policy.max_tries, 1
        while True:
            try:
                reply = self._send(url, params)
            except _Transient as err:
                if attempt >= tries:
                    raise WikipediaError(f"gave up after {tries} tries ({err.reason})") from err
                wait = err.wait if err.wait is not None else self.policy.backoff * 2 ** (attempt - 1)
                wait = min(wait, self.policy.max_wait)
                attempt += 1
                logger.warning("wikipedia: %s; try %d of %d in %.0f s", err.reason, attempt, tries, wait)
                self.sleep(wait)
                continue
            self.last_reply = reply
            return reply

    def _send(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request; a retryable failure raises :class:`_Transient`."""
        self.requests += 1
        try:
            response = self._client.get(url, params=params)
        except httpx.TransportError as err:
            detail = f"{type(err).__name__}: {err}"
            if not self._connected and isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
                raise WikipediaUnreachable(
                    f"cannot reach {url} ({detail}); this machine seems to be offline. "
                    f"`--source offline` needs no network"
                ) from err
            kind = "timeout" if isinstance(err, httpx.TimeoutException) else "connection error"
            raise _Transient(f"{kind} ({detail})") from err
        except httpx.DecodingError as err:  # a body that its Content-Encoding cannot decode
            raise _Transient(f"the reply could not be decoded ({err})") from err
        self._connected = True
        status = response.status_code
        if status == 429:
            raise _Transient("HTTP 429 Too Many Requests", retry_after(response))
        if status >= 500:
            raise _Transient(f"HTTP {status}", retry_after(response))
        if status != 200:
            raise WikipediaError(f"{url}: HTTP {status}")
        try:
            reply = response.json()
        except ValueError as err:
            raise _Transient("the reply is not JSON") from err
        if not isinstance(reply, dict):
            raise _Transient(f"the reply is not a JSON object but {type(reply).__name__}")
        error = reply.get("error")
        if error:
            code, info = (error.get("code"), error.get("info", "")) if isinstance(error, dict) else (None, error)
            if code in ("maxlag", "ratelimited"):
                wait = max(retry_after(response) or 0.0, MIN_LAG_PAUSE)
                raise _Transient(f"{code}: {info}", wait)
            if code in TEMPORARY_API_ERRORS or str(code).startswith(TEMPORARY_API_ERROR_PREFIX):
                raise _Transient(f"API error {code}: {info}", retry_after(response))
            raise WikipediaError(f"{url}: API error {code}: {info}")
        return reply
