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
* HTTP 429 honours Retry-After; 5xx, temporary API errors (``readonly``, ``internal_api_error_*``),
  timeouts, dropped connections and garbled replies back off exponentially; a request is tried at most
  ``max_tries`` times, then the page counts as failed (with the reason) and the run goes on; a machine
  that cannot connect at all fails at once;
* one cache file per page (``WORK/wikipedia_cache/`` unless ``--cache``), written atomically: a rerun
  after an interruption asks only for the pages not yet cached; ``--refresh`` fetches them all again.

Example::

    imagenet-multimodal classes --work W --source wikipedia --contact https://example.org/me
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import wikipediaapi

from .classes import ClassText, imagenet_classes, offline_texts
from .io import InputError, read_json, write_json
from .wikipedia_client import CONTACT_ENV as CONTACT_ENV  # re-exported: the client lives in its own module
from .wikipedia_client import PoliteWikipedia, RetryPolicy, WikipediaError, WikipediaUnreachable, user_agent
from .wikipedia_client import retry_after as retry_after

logger = logging.getLogger(__name__)

WIKIPEDIA_SOURCE = "wikipedia"
HOW = ("exact", "redirect", "manual")


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


_ENTRY_KEYS = ("requested", "status", "title", "url", "revision", "timestamp", "summary", "description")


class PageCache:
    """One JSON file per requested title, written atomically; an entry lacking a field is no entry."""

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
        if not isinstance(entry, dict) or entry.get("requested") != title:
            return None
        lacking = [key for key in _ENTRY_KEYS if key not in entry]
        if entry.get("redirected_from") and "section" not in entry:
            lacking.append("section")  # a redirect cached before section redirects were told apart
        if lacking:  # edited by hand, or written by older code: fetched again
            logger.warning("wikipedia: ignoring the cache entry %s: it lacks %s", path, ", ".join(lacking))
            return None
        return entry

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

    ``status`` is ``ok``, ``missing``, ``disambiguation`` or ``section_missing`` (the title redirects
    to a section the page lacks); failures raise :class:`WikipediaError`. A title that redirects to
    a section (``Page#Section``) gives that section's text as the summary and no description.
    """
    page = wiki.page(title)
    wiki.last_reply = None
    try:
        summary = page.summary.strip()
        description = _description(page)
    except (KeyError, TypeError, AttributeError) as err:  # the library indexes the reply directly
        raise WikipediaError(f"unexpected reply for {title!r} ({type(err).__name__}: {err})") from err
    query = (wiki.last_reply or {}).get("query", {})
    entry = next(iter(query.get("pages", {}).values()), {})
    revision = (entry.get("revisions") or [{}])[0]
    redirects = query.get("redirects") or []
    # a redirect to a section (Page#Section): the class is that section's topic, not the page's
    fragment = next((r["tofragment"] for r in redirects if r.get("tofragment")), None)
    url = entry.get("fullurl")
    if "missing" in entry or "invalid" in entry:
        status = "missing"
    elif "disambiguation" in entry.get("pageprops", {}):
        status = "disambiguation"
    else:
        status = "ok"
    if status == "ok" and fragment:
        section = next((body for s in page.sections_by_title(fragment) if (body := _section_body(s))), None)
        if section is None:
            status = "section_missing"  # the redirect names a section that the page no longer has
        summary, description = section or "", None
        url = f"{url}#{quote(fragment.replace(' ', '_'))}" if url else url
    return {
        "requested": title,
        "status": status,
        "title": entry.get("title"),
        "redirected_from": redirects[0]["from"] if redirects else None,
        "section": fragment,
        "url": url,
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
    if entry["status"] == "section_missing":
        return f"redirects to section {entry.get('section')!r} of {entry['title']!r}, which that page lacks"
    if entry["status"] != "ok":
        return f"{entry['status']} page"
    return None if entry.get("summary") or entry.get("description") else "empty summary and no Description section"


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
