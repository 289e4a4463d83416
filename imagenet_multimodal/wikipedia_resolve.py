"""Review the pinned Wikipedia page table online: ``imagenet-multimodal classes resolve [--verify]``.

``resolve`` proposes a page for every class from its WordNet lemmas, in order: the lemma as a title
(``exact``), the lemma's redirect followed (``redirect``), disambiguation pages skipped (detected by the
``disambiguation`` page property: the library itself does not detect them), and a full-text search on
the first lemma as a last resort (``search``). It prints, as CSV on stdout, the classes where the
proposal differs from the pinned table, for a person to review; the table itself is never changed.

``resolve --verify`` checks that every pinned title still exists, is not a disambiguation page and is
not (any more) a redirect; it prints the problems as CSV and exits 1 if a title is missing or a
disambiguation page. Titles are looked up 50 to a request, in series, with the collector's politeness.

Example::

    imagenet-multimodal classes resolve --contact you@example.org > proposals.csv
    imagenet-multimodal classes resolve --verify --contact you@example.org
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .classes import ImageNetClass, imagenet_classes
from .options import as_path, parse_options
from .wikipedia import (
    PinnedPage,
    PoliteWikipedia,
    RetryPolicy,
    WikipediaError,
    make_client,
    read_pinned_pages,
)

logger = logging.getLogger(__name__)

BATCH = 50  # titles per query: the API's limit for clients without the apihighlimits right
# Characters MediaWiki does not allow in titles; such lemmas cannot be pages.
ILLEGAL = set("#<>[]{}|")


@dataclass(frozen=True)
class TitleInfo:
    """What the wiki says about one asked title."""

    asked: str
    title: str  # after normalisation and redirects (a redirect to a section stays the redirect's title)
    exists: bool
    disambiguation: bool
    redirected: bool
    section: str | None = None  # "Page#Section" that a section redirect leads to


@dataclass(frozen=True)
class Proposal:
    """A proposed page for one class."""

    wnid: str
    title: str | None
    how: str  # exact, redirect, search, none
    note: str


def lookup_titles(wiki: PoliteWikipedia, titles: Sequence[str]) -> dict[str, TitleInfo]:
    """Look the titles up, 50 per request, following redirects; keyed by the asked title."""
    asked = [t for t in dict.fromkeys(titles) if t and not ILLEGAL & set(t)]
    found: dict[str, TitleInfo] = {}
    for start in range(0, len(asked), BATCH):
        batch = asked[start:start + BATCH]
        reply = wiki.api({
            "action": "query", "titles": "|".join(batch), "redirects": 1,
            "prop": "info|pageprops", "ppprop": "disambiguation",
        })
        query = reply.get("query", {})
        normalized = {n["from"]: n["to"] for n in query.get("normalized", [])}
        redirects = {r["from"]: r["to"] for r in query.get("redirects", [])}
        fragments = {r["from"]: r["tofragment"] for r in query.get("redirects", []) if r.get("tofragment")}
        pages = {p.get("title"): p for p in query.get("pages", {}).values()}
        for title in batch:
            name = normalized.get(title, title)
            target = redirects.get(name, name)
            page = pages.get(target, {"missing": ""})
            section = f"{target}#{fragments[name]}" if name in fragments else None
            found[title] = TitleInfo(
                # the page's lead describes a broader topic: keep the redirect, which fetch follows to the section
                asked=title, title=name if section else target,
                exists="missing" not in page and "invalid" not in page,
                disambiguation="disambiguation" in page.get("pageprops", {}),
                redirected=target != name, section=section,
            )
    return found


def search_title(wiki: PoliteWikipedia, text: str) -> str | None:
    """The best full-text search hit for ``text`` that is not a disambiguation page, or None."""
    reply = wiki.api({
        "action": "query", "generator": "search", "gsrsearch": text, "gsrnamespace": 0, "gsrlimit": 5,
        "redirects": 1, "prop": "pageprops", "ppprop": "disambiguation",
    })
    pages = sorted(reply.get("query", {}).get("pages", {}).values(), key=lambda p: p.get("index", 0))
    hits = [p["title"] for p in pages if "disambiguation" not in p.get("pageprops", {})]
    return hits[0] if hits else None


def propose(cls: ImageNetClass, found: dict[str, TitleInfo]) -> Proposal | None:
    """The first lemma that leads to a real article, or None (then search)."""
    skipped = []
    for index, lemma in enumerate(cls.lemmas):
        info = found.get(lemma)
        if info is None or not info.exists:
            continue
        if info.disambiguation:
            skipped.append(lemma)
            continue
        how = "redirect" if info.redirected else "exact"
        note = f"lemma {index + 1} {lemma!r}" + (f"; disambiguation: {', '.join(skipped)}" if skipped else "")
        if info.section:
            note += f"; redirects to the section {info.section} (its text is the class text)"
        return Proposal(cls.wnid, info.title, how, note)
    return None


def resolve_all(wiki: PoliteWikipedia, classes: Sequence[ImageNetClass]) -> list[Proposal]:
    """A proposal for every class: lemma lookups first (batched), then one search per class left."""
    found = lookup_titles(wiki, [lemma for cls in classes for lemma in cls.lemmas])
    proposals = []
    for cls in classes:
        proposal = propose(cls, found)
        if proposal is None:
            hit = search_title(wiki, cls.lemmas[0])
            how, note = ("search", f"search for {cls.lemmas[0]!r}") if hit else ("none", "nothing found")
            proposal = Proposal(cls.wnid, hit, how, note)
        proposals.append(proposal)
    return proposals


def differences(proposals: Sequence[Proposal], pinned: dict[str, PinnedPage]) -> list[dict[str, Any]]:
    """Rows where the proposal's title differs from the pinned title."""
    names = {c.wnid: c.name for c in imagenet_classes()}
    rows = []
    for p in proposals:
        pin = pinned[p.wnid]
        if p.title != pin.title:
            rows.append({"wnid": p.wnid, "name": names[p.wnid], "pinned": pin.title or "",
                         "pinned_how": pin.how, "proposed": p.title or "", "proposed_how": p.how, "note": p.note})
    return rows


def verify(wiki: PoliteWikipedia, pinned: dict[str, PinnedPage]) -> list[dict[str, Any]]:
    """Problems with pinned titles: missing, disambiguation (errors) or redirect (to update)."""
    titles = {pin.title for pin in pinned.values() if pin.title}
    found = lookup_titles(wiki, sorted(titles))
    rows = []
    for pin in pinned.values():
        if not pin.title:
            continue
        info = found.get(pin.title)
        if info is None:
            problem, detail = "invalid", "the title has characters MediaWiki does not allow"
        elif not info.exists:
            problem, detail = "missing", ""
        elif info.disambiguation:
            problem, detail = "disambiguation", ""
        elif info.redirected:
            problem, detail = "redirect", f"now redirects to {info.title!r}"
        else:
            continue
        rows.append({"wnid": pin.wnid, "title": pin.title, "problem": problem, "detail": detail})
    return rows


def write_csv(rows: list[dict[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


@dataclass
class ResolveOptions:
    """Options of ``classes resolve``."""

    verify: bool = field(default=False, metadata={"help": "check the pinned titles instead of proposing"})
    pages: Path | None = field(default=None, metadata={"help": "pinned table; the packaged one if not given"})
    contact: str | None = field(
        default=None,
        metadata={"help": "your URL or e-mail for the User-Agent (else $IMAGENET_MULTIMODAL_CONTACT)"},
    )
    max_tries: int = field(default=5, metadata={"help": "tries per request"})

    def __post_init__(self) -> None:
        self.pages = as_path(self.pages)
        RetryPolicy(max_tries=self.max_tries)  # validates


def run(options: ResolveOptions, *, out: TextIO | None = None) -> int:
    """Print the proposals that differ (or, with ``verify``, the problems) as CSV on ``out``
    (default stdout); return the exit status."""
    out = out or sys.stdout
    pinned = read_pinned_pages(options.pages)
    wiki = make_client(contact=options.contact, max_tries=options.max_tries)
    if options.verify:
        rows = verify(wiki, pinned)
        write_csv(rows, ["wnid", "title", "problem", "detail"], out)
        errors = sum(1 for row in rows if row["problem"] != "redirect")
        logger.info("resolve --verify: %d pinned titles, %d errors, %d redirects",
                    sum(1 for p in pinned.values() if p.title), errors, len(rows) - errors)
        return 1 if errors else 0
    proposals = resolve_all(wiki, imagenet_classes())
    rows = differences(proposals, pinned)
    write_csv(rows, ["wnid", "name", "pinned", "pinned_how", "proposed", "proposed_how", "note"], out)
    logger.info("resolve: %d classes, %d proposals differ from the pinned table (%d requests)",
                len(proposals), len(rows), wiki.requests)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imagenet-multimodal classes resolve``."""
    options = parse_options(ResolveOptions, argv, prog="imagenet-multimodal classes resolve", description=__doc__)
    try:
        return run(options)
    except WikipediaError as err:
        logger.error("error: %s", err)
        return 1
