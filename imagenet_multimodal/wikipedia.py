"""Class texts from English Wikipedia: the pinned page table and a polite, resumable collector.

The pinned table ``imagenet_multimodal/data/wikipedia_pages.csv`` (columns ``wnid, title, how, note``)
names, for each of the 1,000 classes, the English Wikipedia page that describes it and how it was
chosen: ``exact`` (the class's first lemma is the title), ``redirect`` (a lemma redirects to the
title) or ``manual`` (chosen by hand; ``note`` says why). A row with an empty title says that no page
fits; such classes keep a fallback text, labelled with its own ``text_source``.
The table was drafted offline, from knowledge rather than from the live site: before a release run
``imagenet-multimodal classes resolve --verify`` online (every title exists and is not a
disambiguation page) and review ``imagenet-multimodal classes resolve`` (its proposals that differ).

``imagenet-multimodal classes --work W --source wikipedia`` fetches, for each pinned page, the lead
(summary), the "Description" section (also when nested under another heading), the page URL and the
revision id with its timestamp, in one request per page through ``wikipediaapi``. Politeness and faults:

* a User-Agent as Wikimedia's policy asks: ``imagenet-multimodal/VERSION (CONTACT)`` plus the library's;
  CONTACT (a URL or an e-mail address) comes from ``--contact`` or ``$IMAGENET_MULTIMODAL_CONTACT``;
* requests in series, each with ``maxlag=5``; a lag error pauses (Retry-After, at least 5 s) and retries;
* HTTP 429 honours Retry-After; 5xx, timeouts and dropped connections back off exponentially;
  a request is tried at most ``max_tries`` times; a machine that cannot connect at all fails at once;
* one cache file per page (``WORK/wikipedia_cache/`` unless ``--cache``), written atomically: a rerun
  after an interruption asks only for the pages not yet cached; ``--refresh`` fetches them all again.

Example::

    imagenet-multimodal classes --work W --source wikipedia --contact https://example.org/me
"""

from __future__ import annotations

import csv
import email.utils
import hashlib
import importlib.resources
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import wikipediaapi

from . import __version__
from .classes import ClassText, imagenet_classes, offline_texts
from .io import InputError, read_json, write_json

logger = logging.getLogger(__name__)

WIKIPEDIA_SOURCE = "wikipedia"
CONTACT_ENV = "IMAGENET_MULTIMODAL_CONTACT"
HOW = ("exact", "redirect", "manual")
MIN_LAG_PAUSE = 5.0  # seconds; Wikimedia asks bots to pause at least this long on a lag error
# Asked for with every page's extract, so that text and revision come from one reply.
PAGE_PROPS = {
    "prop": "extracts|info|revisions|pageprops",
    "inprop": "url",
    "rvprop": "ids|timestamp",
    "ppprop": "disambiguation",
}


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
        error = reply.get("error") if isinstance(reply, dict) else None
        if error:
            code, info = error.get("code"), error.get("info", "")
            if code in ("maxlag", "ratelimited"):
                wait = max(retry_after(response) or 0.0, MIN_LAG_PAUSE)
                raise _Transient(f"{code}: {info}", wait)
            raise WikipediaError(f"{url}: API error {code}: {info}")
        return reply


# ----------------------------------------------------------------------------- the pinned table


@dataclass(frozen=True)
class PinnedPage:
    """One row of the pinned table; ``title`` is None where no page fits."""

    wnid: str
    title: str | None
    how: str
    note: str


def pinned_pages_path() -> Path:
    """The packaged pinned table."""
    return Path(str(importlib.resources.files("imagenet_multimodal").joinpath("data/wikipedia_pages.csv")))


def read_pinned_pages(path: str | Path | None = None) -> dict[str, PinnedPage]:
    """Read and check the pinned table: every ImageNet-1k wnid once, ``how`` known, manual rows and
    rows without a title carry a note."""
    path = Path(path) if path is not None else pinned_pages_path()
    order = [c.wnid for c in imagenet_classes()]
    known = set(order)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != ["wnid", "title", "how", "note"]:
            raise InputError(f"{path}: expected columns wnid,title,how,note, got {reader.fieldnames}")
        pages: dict[str, PinnedPage] = {}
        for line, row in enumerate(reader, start=2):
            where = f"{path}: line {line}"
            wnid, title, how, note = (row[k].strip() for k in ("wnid", "title", "how", "note"))
            if wnid not in known:
                raise InputError(f"{where} field 'wnid': {wnid!r} is not an ImageNet-1k class")
            if wnid in pages:
                raise InputError(f"{where} field 'wnid': {wnid} appears twice")
            if how not in HOW:
                raise InputError(f"{where} field 'how': expected one of {HOW}, got {how!r}")
            if (how == "manual" or not title) and not note:
                raise InputError(f"{where} field 'note': a manual row or a row without title needs a reason")
            pages[wnid] = PinnedPage(wnid, title or None, how, note)
    missing = [w for w in order if w not in pages]
    if missing:
        raise InputError(f"{path}: {len(missing)} classes have no row, e.g. {missing[:3]}")
    return pages


# ----------------------------------------------------------------------------- cache and fetch


class PageCache:
    """One JSON file per requested title, written atomically."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, title: str) -> Path:
        """``<quoted title>.<hash>.json``: readable, safe on any file system, distinct by case."""
        digest = hashlib.sha1(title.encode("utf-8")).hexdigest()[:10]
        return self.folder / f"{quote(title.replace(' ', '_'), safe='')[:120]}.{digest}.json"

    def get(self, title: str) -> dict[str, Any] | None:
        path = self.path(title)
        if not path.exists():
            return None
        try:
            entry = read_json(path)
        except InputError as err:
            logger.warning("wikipedia: ignoring a damaged cache entry: %s", err)
            return None
        return entry if isinstance(entry, dict) and entry.get("requested") == title else None

    def put(self, title: str, entry: dict[str, Any]) -> None:
        write_json(entry, self.path(title))


def _section_body(section: wikipediaapi.WikipediaPageSection) -> str:
    """A section's text followed by its subsections' texts (headings left out)."""
    parts = [section.text.strip(), *(_section_body(s) for s in section.sections)]
    return "\n\n".join(part for part in parts if part)


def _description(page: wikipediaapi.WikipediaPage) -> str | None:
    """The first non-empty "Description" section, at any depth."""
    for section in page.sections_by_title("Description"):
        body = _section_body(section)
        if body:
            return body
    return None


def fetch_page(wiki: PoliteWikipedia, title: str) -> dict[str, Any]:
    """Fetch one page (one request) and return its cache entry.

    ``status`` is ``ok``, ``missing`` or ``disambiguation``; failures raise :class:`WikipediaError`.
    """
    page = wiki.page(title)
    wiki.last_reply = None
    try:
        summary = page.summary.strip()
        description = _description(page)
    except KeyError as err:  # the library indexes the reply directly
        raise WikipediaError(f"unexpected reply for {title!r}: no {err}") from err
    query = (wiki.last_reply or {}).get("query", {})
    entry = next(iter(query.get("pages", {}).values()), {})
    revision = (entry.get("revisions") or [{}])[0]
    redirects = query.get("redirects") or []
    if "missing" in entry or "invalid" in entry:
        status = "missing"
    elif "disambiguation" in entry.get("pageprops", {}):
        status = "disambiguation"
    else:
        status = "ok"
    return {
        "requested": title,
        "status": status,
        "title": entry.get("title"),
        "redirected_from": redirects[0]["from"] if redirects else None,
        "url": entry.get("fullurl"),
        "revision": revision.get("revid", entry.get("lastrevid")),
        "timestamp": revision.get("timestamp"),
        "summary": summary if status == "ok" else "",
        "description": description if status == "ok" else None,
        "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass
class CollectReport:
    """What a collection run did, page by page (titles)."""

    fetched: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def log(self) -> None:
        logger.info(
            "wikipedia: %d pages: %d fetched, %d from the cache, %d failed",
            len(self.fetched) + len(self.cached) + len(self.failed),
            len(self.fetched), len(self.cached), len(self.failed),
        )
        for title, reason in self.failed.items():
            logger.warning("wikipedia: failed: %s: %s", title, reason)


def collect_pages(
    titles: Iterable[str],
    *,
    cache: PageCache,
    connect: Callable[[], PoliteWikipedia],
    refresh: bool = False,
    max_failures_in_a_row: int = 10,
) -> tuple[dict[str, dict[str, Any]], CollectReport]:
    """Fetch each title not yet cached (all of them with ``refresh``), in series, caching each.

    ``connect`` makes the client on first need, so a fully cached run makes no request at all.
    Returns the entries by title and the report; gives up early when Wikipedia is unreachable or
    ``max_failures_in_a_row`` pages fail one after another.
    """
    entries: dict[str, dict[str, Any]] = {}
    report = CollectReport()
    wiki: PoliteWikipedia | None = None
    in_a_row = 0
    for title in dict.fromkeys(titles):
        entry = None if refresh else cache.get(title)
        if entry is not None:
            entries[title] = entry
            report.cached.append(title)
            continue
        wiki = wiki or connect()
        try:
            entry = fetch_page(wiki, title)
        except WikipediaUnreachable:
            raise
        except WikipediaError as err:
            report.failed[title] = str(err)
            in_a_row += 1
            if in_a_row >= max_failures_in_a_row:
                report.log()
                raise WikipediaError(f"{in_a_row} pages failed in a row, the last: {title}: {err}") from err
            continue
        in_a_row = 0
        cache.put(title, entry)
        entries[title] = entry
        report.fetched.append(title)
        if len(report.fetched) % 100 == 0:
            logger.info("wikipedia: %d pages fetched", len(report.fetched))
    return entries, report


def make_client(*, contact: str | None, max_tries: int = 5) -> PoliteWikipedia:
    """The client used by the ``classes`` stage (tests replace this function)."""
    return PoliteWikipedia(user_agent(contact), policy=RetryPolicy(max_tries=max_tries))


def _unusable(entry: dict[str, Any]) -> str | None:
    """Why a cached page gives no class text, or None."""
    if entry["status"] != "ok":
        return f"{entry['status']} page"
    return None if entry.get("summary") else "empty summary"


def wikipedia_texts(
    *,
    work: Path,
    cache: Path | None = None,
    contact: str | None = None,
    refresh: bool = False,
    allow_missing: bool = False,
    max_tries: int = 5,
    pages: Path | None = None,
) -> dict[str, ClassText]:
    """Class texts from the pinned pages, by wnid; writes ``WORK/wikipedia_summary.json``.

    Classes without a pinned page keep the offline fallback (labelled by its source). Classes whose
    page gave no text (failed, missing, disambiguation, empty) raise :class:`WikipediaError` unless
    ``allow_missing``, in which case they keep the fallback too.
    """
    pins = read_pinned_pages(pages)
    entries, report = collect_pages(
        [pin.title for pin in pins.values() if pin.title],
        cache=PageCache(cache if cache is not None else Path(work) / "wikipedia_cache"),
        connect=lambda: make_client(contact=contact, max_tries=max_tries),
        refresh=refresh,
    )
    report.log()
    texts: dict[str, ClassText] = {}
    without_text: dict[str, str] = {}
    for wnid, pin in pins.items():
        if pin.title is None:
            continue
        entry = entries.get(pin.title)
        reason = report.failed[pin.title] if entry is None else _unusable(entry)
        if reason:
            without_text[wnid] = f"{pin.title}: {reason}"
            continue
        texts[wnid] = ClassText(
            summary=entry["summary"], source=WIKIPEDIA_SOURCE, description=entry["description"],
            title=entry["title"], url=entry["url"], revision=entry["revision"], timestamp=entry["timestamp"],
        )
    without_page = [wnid for wnid, pin in pins.items() if pin.title is None]
    logger.info(
        "wikipedia: %d classes with a Wikipedia text, %d without a pinned page (fallback text), %d without text",
        len(texts), len(without_page), len(without_text),
    )
    for wnid, reason in without_text.items():
        logger.warning("wikipedia: no text for %s (%s)", wnid, reason)
    write_json(
        {"fetched": len(report.fetched), "cached": len(report.cached), "failed": report.failed,
         "without_text": without_text, "without_page": without_page, "allow_missing": allow_missing},
        Path(work) / "wikipedia_summary.json",
    )
    if without_text and not allow_missing:
        raise WikipediaError(
            f"{len(without_text)} classes have no Wikipedia text (e.g. {next(iter(without_text.items()))}); "
            f"rerun to retry failed pages, fix the pinned table, or pass --allow-missing to keep their "
            f"fallback text"
        )
    return {**offline_texts(), **texts}
