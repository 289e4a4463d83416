"""Wikipedia class texts: the pinned table, the client's fault handling, the cache and ``resolve``.

No network: every reply comes from :class:`FakeWiki`, an ``httpx.MockTransport`` handler that answers
in the MediaWiki action API's JSON shapes (formatversion 1, as ``wikipediaapi`` requests them), and
sleeping is recorded instead of done.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import Counter
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pyarrow.parquet as pq
import pytest

from imagenet_multimodal import wikipedia, wikipedia_resolve
from imagenet_multimodal.classes import LEMMA_SOURCE, LLM_SOURCE, imagenet_classes
from imagenet_multimodal.cli import main as cli_main
from imagenet_multimodal.io import InputError
from imagenet_multimodal.wikipedia import (
    PageCache,
    PoliteWikipedia,
    RetryPolicy,
    WikipediaError,
    collect_pages,
    fetch_page,
    pinned_pages_path,
    read_pinned_pages,
    user_agent,
)

AGENT = "imagenet-multimodal/0.1.0 (https://example.org/tests)"


def page_json(title: str, extract: str, *, pageid: int = 101, revid: int = 5001,
              disambiguation: bool = False) -> dict:
    """One page entry of prop=extracts|info|revisions|pageprops with inprop=url."""
    path = title.replace(" ", "_")
    entry = {
        "pageid": pageid, "ns": 0, "title": title, "extract": extract,
        "contentmodel": "wikitext", "pagelanguage": "en", "touched": "2024-06-02T08:00:00Z",
        "lastrevid": revid, "length": len(extract),
        "fullurl": f"https://en.wikipedia.org/wiki/{quote(path)}",
        "canonicalurl": f"https://en.wikipedia.org/wiki/{quote(path)}",
        "revisions": [{"revid": revid, "parentid": revid - 1, "timestamp": "2024-05-30T12:34:56Z"}],
    }
    if disambiguation:
        entry["pageprops"] = {"disambiguation": ""}
    return entry


def query_reply(*entries: dict, redirects=(), normalized=()) -> dict:
    query: dict = {"pages": {str(e.get("pageid", -1 - i)): e for i, e in enumerate(entries)}}
    if redirects:
        query["redirects"] = [{"from": a, "to": b} for a, b in redirects]
    if normalized:
        query["normalized"] = [{"from": a, "to": b} for a, b in normalized]
    return {"batchcomplete": "", "query": query}


MISSING = query_reply({"ns": 0, "title": "Nonexistent animal", "missing": ""})
MAXLAG = {"error": {"code": "maxlag", "info": "Waiting for 10.64.16.8: 7 seconds lagged.",
                    "host": "10.64.16.8", "lag": 7, "type": "db",
                    "*": "See https://en.wikipedia.org/w/api.php for API usage."}}
TENCH = ("The tench or doctor fish (Tinca tinca) is a fresh- and brackish-water fish of the order "
         "Cypriniformes. It is found throughout Eurasia.\n\n\n== Description ==\nThe tench has a stocky, "
         "carp-like shape and olive-green skin. Its eyes are small and red-orange.\n\n\n== Ecology ==\n"
         "Tench live in still waters.")
RED_PANDA = ("The red panda (Ailurus fulgens) is a small mammal native to the eastern Himalayas.\n\n\n"
             "== Taxonomy ==\nIt was first described in 1825.\n\n\n== Characteristics ==\n\n\n"
             "=== Description ===\nThe red panda has dense reddish-brown fur.\n\n\n==== Coloration ====\n"
             "Its belly and legs are black.\n\n\n=== Size ===\nIt is about the size of a cat.")


def ok_reply(title: str) -> dict:
    return query_reply(page_json(title, f"{title} is a thing. It has many properties. People describe it."))


class FakeWiki:
    """A MediaWiki API: per-title scripted answers first, then ``pages``, else a generic page."""

    def __init__(self, pages: dict | None = None, *, generic: bool = True) -> None:
        self.pages = dict(pages or {})
        self.script: dict[str, list] = {}
        self.generic = generic
        self.calls: list[dict] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.calls.append(params)
        self.headers.append(request.headers)
        title = params.get("titles", "")
        if self.script.get(title):
            step = self.script[title].pop(0)
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, httpx.Response):
                return step
            return httpx.Response(200, json=step)
        if title in self.pages:
            return httpx.Response(200, json=self.pages[title])
        if self.generic:
            return httpx.Response(200, json=ok_reply(title))
        return httpx.Response(200, json=query_reply({"ns": 0, "title": title, "missing": ""}))

    def titles(self) -> list[str]:
        return [c.get("titles") for c in self.calls]


def client(fake: FakeWiki, sleeps: list | None = None, tries: int = 5) -> PoliteWikipedia:
    return PoliteWikipedia(
        AGENT, policy=RetryPolicy(max_tries=tries, backoff=1.0),
        sleep=(sleeps if sleeps is not None else []).append, transport=httpx.MockTransport(fake),
    )


# ----------------------------------------------------------------------------- the pinned table


def test_pinned_table_covers_every_class_once_with_reasons():
    pins = read_pinned_pages()
    classes = imagenet_classes()
    assert list(pins) == [c.wnid for c in classes]
    with pinned_pages_path().open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1000 == len({r["wnid"] for r in rows})
    for cls, row in zip(classes, rows):
        assert row["how"] in ("exact", "redirect", "manual")
        if row["how"] == "manual" or not row["title"]:
            assert row["note"].strip(), row
        if row["how"] == "exact":  # exact means: the first lemma, capitalised as Wikipedia does
            assert row["title"] == cls.lemmas[0][0].upper() + cls.lemmas[0][1:], row
        if not row["title"]:
            assert row["how"] == "manual" and row["note"].startswith("no fitting page"), row
    assert pins["n02509815"].title == "Red panda"
    assert pins["n02012849"].title != pins["n03126707"].title  # crane the bird, crane the machine
    assert pins["n03710637"].title != pins["n03710721"].title  # the two maillots
    assert Counter(p.how for p in pins.values())["manual"] > 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("wnid,title\n", "expected columns wnid,title,how,note"),
        ("wnid,title,how,note\nn99999999,X,exact,\n", "'n99999999' is not an ImageNet-1k class"),
        ("wnid,title,how,note\nn01440764,Tench,exact,\nn01440764,Tench,exact,\n", "appears twice"),
        ("wnid,title,how,note\nn01440764,Tench,guess,\n", "field 'how'"),
        ("wnid,title,how,note\nn01440764,Tench,manual,\n", "needs a reason"),
        ("wnid,title,how,note\nn01440764,Tench,exact,\n", "999 classes have no row"),
    ],
)
def test_bad_pinned_table(tmp_path, content, message):
    path = tmp_path / "pages.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_pinned_pages(path)


# ----------------------------------------------------------------------------- pages


def test_exact_page_one_request_with_politeness():
    fake = FakeWiki({"Tench": query_reply(page_json("Tench", TENCH))})
    wiki = client(fake)
    entry = fetch_page(wiki, "Tench")
    assert entry["status"] == "ok" and entry["title"] == "Tench" and entry["redirected_from"] is None
    assert entry["summary"].startswith("The tench or doctor fish") and "Description" not in entry["summary"]
    assert entry["description"].startswith("The tench has a stocky") and "still waters" not in entry["description"]
    assert (entry["url"], entry["revision"], entry["timestamp"]) == (
        "https://en.wikipedia.org/wiki/Tench", 5001, "2024-05-30T12:34:56Z")
    assert len(fake.calls) == 1
    call = fake.calls[0]
    assert call["maxlag"] == "5" and call["redirects"] == "1" and call["format"] == "json"
    assert set(call["prop"].split("|")) == {"extracts", "info", "revisions", "pageprops"}
    assert call["rvprop"] == "ids|timestamp" and call["explaintext"] == "1"
    agent = fake.headers[0]["User-Agent"]
    assert agent.startswith(AGENT) and "Wikipedia-API/" in agent


def test_redirect_and_nested_description():
    reply = query_reply(page_json("Red panda", RED_PANDA), redirects=[("Lesser panda", "Red panda")],
                        normalized=[("lesser panda", "Lesser panda")])
    entry = fetch_page(client(FakeWiki({"lesser panda": reply})), "lesser panda")
    assert entry["title"] == "Red panda" and entry["redirected_from"] == "Lesser panda"
    assert entry["summary"] == "The red panda (Ailurus fulgens) is a small mammal native to the eastern Himalayas."
    # the nested "=== Description ===" with its own subsection, not the sibling "Size"
    assert entry["description"] == "The red panda has dense reddish-brown fur.\n\nIts belly and legs are black."


def test_disambiguation_and_missing_pages_give_no_text():
    crane = query_reply(page_json("Crane", "Crane may refer to:\nCrane (bird)\nCrane (machine)",
                                  disambiguation=True))
    wiki = client(FakeWiki({"Crane": crane, "Nonexistent animal": MISSING}))
    entry = fetch_page(wiki, "Crane")
    assert entry["status"] == "disambiguation" and entry["summary"] == "" and entry["description"] is None
    missing = fetch_page(wiki, "Nonexistent animal")
    assert missing["status"] == "missing" and missing["summary"] == "" and missing["revision"] is None


def test_non_ascii_title_cached_under_a_safe_name(tmp_path):
    reply = query_reply(page_json("Consommé", "Consommé is a clear soup. It is made from stock."))
    fake = FakeWiki({"Consommé": reply})
    cache = PageCache(tmp_path)
    entries, report = collect_pages(["Consommé"], cache=cache, connect=lambda: client(fake))
    entry = entries["Consommé"]
    assert entry["title"] == "Consommé" and entry["url"] == "https://en.wikipedia.org/wiki/Consomm%C3%A9"
    assert report.fetched == ["Consommé"] and fake.calls[0]["titles"] == "Consommé"
    path = cache.path("Consommé")
    assert path.exists() and path.name.isascii() and cache.get("Consommé")["summary"].startswith("Consommé")


CARP = ("Carp are fish of the family Cyprinidae.\n\n\n== Description ==\nCarp are large.\n\n\n"
        "== Crucian carp ==\nThe crucian carp is a small carp of European ponds.\n\n\n== Uses ==\nFood.")


def _section_redirect(fragment: str) -> dict:
    reply = query_reply(page_json("Carp", CARP))
    reply["query"]["redirects"] = [{"from": "Crucian", "to": "Carp", "tofragment": fragment}]
    return reply


def test_a_redirect_to_a_section_gives_that_sections_text():
    """'Crucian' -> 'Carp#Crucian carp': the page's lead and Description describe carp in general."""
    entry = fetch_page(client(FakeWiki({"Crucian": _section_redirect("Crucian carp")})), "Crucian")
    assert entry["status"] == "ok" and entry["section"] == "Crucian carp"
    assert entry["summary"] == "The crucian carp is a small carp of European ponds." and entry["description"] is None
    assert entry["url"] == "https://en.wikipedia.org/wiki/Carp#Crucian_carp"
    gone = fetch_page(client(FakeWiki({"Crucian": _section_redirect("Golden carp")})), "Crucian")
    assert gone["status"] == "section_missing" and gone["summary"] == ""
    assert "redirects to section 'Golden carp' of 'Carp'" in wikipedia._unusable(gone)


def test_resolve_keeps_a_section_redirect_and_says_where_it_leads():
    class Fake(FakeWiki):
        def __call__(self, request):
            self.calls.append(dict(request.url.params))
            reply = _section_redirect("Crucian carp")
            reply["query"]["pages"] = {"5": {"pageid": 5, "ns": 0, "title": "Carp"}}
            return httpx.Response(200, json=reply)

    found = wikipedia_resolve.lookup_titles(client(Fake()), ["Crucian"])
    assert found["Crucian"].title == "Crucian" and found["Crucian"].section == "Carp#Crucian carp"
    cls = dataclasses.replace(imagenet_classes()[1], lemmas=("Crucian",))
    proposal = wikipedia_resolve.propose(cls, found)
    assert proposal.title == "Crucian" and "redirects to the section Carp#Crucian carp" in proposal.note


def test_a_cache_entry_lacking_a_field_is_fetched_again(tmp_path, caplog):
    cache = PageCache(tmp_path)
    fake = FakeWiki()
    entries, _ = collect_pages(["Tench"], cache=cache, connect=lambda: client(fake))
    old = {k: v for k, v in entries["Tench"].items() if k != "timestamp"}
    cache.put("Tench", old)
    assert cache.get("Tench") is None and "lacks timestamp" in caplog.text
    entries, report = collect_pages(["Tench"], cache=cache, connect=lambda: client(fake))
    assert report.fetched == ["Tench"] and entries["Tench"]["timestamp"] == "2024-05-30T12:34:56Z"
    # a redirect cached before section redirects were told apart may be one: fetched again
    cache.put("Tench", {k: v for k, v in entries["Tench"].items() if k != "section"} | {"redirected_from": "T"})
    assert cache.get("Tench") is None and "lacks section" in caplog.text


# ----------------------------------------------------------------------------- faults


def test_429_honours_retry_after_then_succeeds():
    fake = FakeWiki()
    fake.script["Tench"] = [httpx.Response(429, headers={"Retry-After": "7"}, text="Too many requests")]
    sleeps: list = []
    assert fetch_page(client(fake, sleeps), "Tench")["status"] == "ok"
    assert sleeps == [7.0] and len(fake.calls) == 2


def test_maxlag_error_pauses_then_succeeds():
    fake = FakeWiki()
    fake.script["Tench"] = [httpx.Response(200, json=MAXLAG, headers={
        "Retry-After": "5", "X-Database-Lag": "7", "MediaWiki-API-Error": "maxlag"})]
    sleeps: list = []
    entry = fetch_page(client(fake, sleeps), "Tench")
    assert entry["status"] == "ok" and sleeps == [5.0] and len(fake.calls) == 2


def test_other_api_error_is_reported_not_retried():
    fake = FakeWiki()
    fake.script["Tench"] = [{"error": {"code": "badvalue", "info": "Unrecognized value."}}]
    with pytest.raises(WikipediaError, match="API error badvalue"):
        fetch_page(client(fake), "Tench")
    assert len(fake.calls) == 1


@pytest.mark.parametrize("code", ["readonly", "internal_api_error_DBQueryError"])
def test_temporary_api_errors_are_retried(code):
    fake = FakeWiki()
    fake.script["Tench"] = [{"error": {"code": code, "info": "The wiki is in read-only mode."}}] * 2
    sleeps: list = []
    assert fetch_page(client(fake, sleeps), "Tench")["status"] == "ok"
    assert sleeps == [1.0, 2.0] and len(fake.calls) == 3


GARBLED = {
    "undecodable": lambda: httpx.Response(200, headers={"Content-Encoding": "gzip"},
                                          stream=httpx.ByteStream(b"not gzip at all")),
    "not an object": lambda: httpx.Response(200, json=["not", "an", "object"]),
    "query is a list": lambda: httpx.Response(200, json={"batchcomplete": "", "query": []}),
    "pages is a list": lambda: httpx.Response(200, json={"batchcomplete": "", "query": {"pages": []}}),
}


@pytest.mark.parametrize("kind", GARBLED)
def test_a_garbled_reply_is_one_failed_page_with_a_reason(tmp_path, kind):
    fake = FakeWiki()
    fake.script["Bad page"] = [GARBLED[kind]() for _ in range(2)]
    entries, report = collect_pages(["Tench", "Bad page", "Goldfish"], cache=PageCache(tmp_path),
                                    connect=lambda: client(fake, tries=2))
    assert sorted(entries) == ["Goldfish", "Tench"] and list(report.failed) == ["Bad page"]
    reason = report.failed["Bad page"]
    assert {"undecodable": "could not be decoded", "not an object": "not a JSON object but list",
            "query is a list": "unexpected reply for 'Bad page' (TypeError",
            "pages is a list": "unexpected reply for 'Bad page' (AttributeError"}[kind] in reason


NO_LEAD = TENCH[TENCH.index("== Description ==\n"):]


@pytest.mark.parametrize("lead", ["\n\n\n", ""])  # an empty lead, with or without the blank line before
def test_an_empty_lead_gives_an_empty_summary_not_the_whole_page(lead):
    entry = fetch_page(client(FakeWiki({"Tench": query_reply(page_json("Tench", lead + NO_LEAD))})), "Tench")
    assert entry["summary"] == ""
    assert entry["description"] == "The tench has a stocky, carp-like shape and olive-green skin. Its eyes are " \
        "small and red-orange."


def test_a_heading_line_without_a_blank_line_before_stays_in_the_summary():
    """wikipediaapi starts a section only at a heading after a blank line; the summary must end
    where it does, or the text under such a heading is lost from both."""
    entry = fetch_page(client(FakeWiki({"Tench": query_reply(page_json("Tench", "Lead.\n== Description ==\nDesc."))})),
                       "Tench")
    assert "Desc." in entry["summary"] + (entry["description"] or "")


def test_a_page_without_lead_gives_its_description_once(tmp_path, fake_site):
    """The Description alone is the class text: not given twice, and no heading leaks into it."""
    fake_site(FakeWiki({"Tench": query_reply(page_json("Tench", "\n\n\n" + NO_LEAD))}))
    args = ["classes", "--work", str(tmp_path), "--source", "wikipedia", "--contact", "me@example.org"]
    assert cli_main(args) == 0
    tench = pq.read_table(tmp_path / "classes.parquet").to_pylist()[0]
    assert tench["text_source"] == "wikipedia" and tench["summary"] == ""
    assert tench["sentences"] == ["The tench has a stocky, carp-like shape and olive-green skin.",
                                  "Its eyes are small and red-orange."]


def test_timeouts_back_off_exponentially_then_succeed():
    fake = FakeWiki()
    fake.script["Tench"] = [httpx.ReadTimeout("timed out"), httpx.ReadTimeout("timed out")]
    sleeps: list = []
    assert fetch_page(client(fake, sleeps), "Tench")["status"] == "ok"
    assert sleeps == [1.0, 2.0]


def test_repeated_5xx_ends_in_a_reported_failure_and_the_rest_goes_on(tmp_path, caplog):
    fake = FakeWiki()
    fake.script["Bad page"] = [httpx.Response(503, text="Service Unavailable")] * 3
    sleeps: list = []
    entries, report = collect_pages(["Tench", "Bad page", "Goldfish"], cache=PageCache(tmp_path),
                                    connect=lambda: client(fake, sleeps, tries=3))
    assert sorted(entries) == ["Goldfish", "Tench"]
    assert report.failed == {"Bad page": "gave up after 3 tries (HTTP 503)"}
    assert sleeps == [1.0, 2.0]  # bounded: three tries, two waits
    assert not PageCache(tmp_path).path("Bad page").exists()
    with caplog.at_level("INFO"):
        report.log()
    assert "2 fetched, 0 from the cache, 1 failed" in caplog.text and "Bad page" in caplog.text


def test_many_failures_in_a_row_stop_the_run(tmp_path):
    fake = FakeWiki()
    for title in "ABC":
        fake.script[title] = [httpx.Response(500)]
    with pytest.raises(WikipediaError, match="3 pages failed in a row"):
        collect_pages(["Tench", "A", "B", "C", "D"], cache=PageCache(tmp_path),
                      connect=lambda: client(fake, tries=1), max_failures_in_a_row=3)
    assert "D" not in fake.titles()


def test_unreachable_fails_at_once():
    fake = FakeWiki()
    fake.script["Tench"] = [httpx.ConnectError("[Errno -3] Temporary failure in name resolution")]
    sleeps: list = []
    with pytest.raises(wikipedia.WikipediaUnreachable, match="cannot reach https://en.wikipedia.org/w/api.php"):
        fetch_page(client(fake, sleeps), "Tench")
    assert sleeps == [] and len(fake.calls) == 1


def test_retry_after_as_http_date():
    response = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert wikipedia.retry_after(response) == 0.0
    assert wikipedia.retry_after(httpx.Response(429)) is None


def test_user_agent_needs_a_contact(monkeypatch):
    monkeypatch.delenv(wikipedia.CONTACT_ENV, raising=False)
    with pytest.raises(InputError, match="User-Agent policy"):
        user_agent(None)
    with pytest.raises(InputError, match="a URL or an e-mail"):
        user_agent("me")
    monkeypatch.setenv(wikipedia.CONTACT_ENV, "me@example.org")
    assert user_agent(None).endswith("(me@example.org)")


# ----------------------------------------------------------------------------- cache and resume


def test_resume_after_interruption_makes_no_repeated_request(tmp_path):
    titles = ["Tench", "Goldfish", "Red panda", "Consommé", "Ostrich"]
    first = FakeWiki()
    first.script["Red panda"] = [KeyboardInterrupt()]  # the user presses Ctrl-C mid-run
    cache = PageCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        collect_pages(titles, cache=cache, connect=lambda: client(first))
    assert first.titles() == ["Tench", "Goldfish", "Red panda"]
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written
    second = FakeWiki()
    entries, report = collect_pages(titles, cache=cache, connect=lambda: client(second))
    assert second.titles() == ["Red panda", "Consommé", "Ostrich"]
    assert report.cached == ["Tench", "Goldfish"] and len(entries) == 5
    third = FakeWiki()
    collect_pages(titles, cache=cache, connect=lambda: pytest.fail("a cached run must not connect"))
    _, report = collect_pages(titles, cache=cache, connect=lambda: client(third), refresh=True)
    assert third.titles() == titles and len(report.fetched) == 5


# ----------------------------------------------------------------------------- the classes stage


@pytest.fixture
def fake_site(monkeypatch) -> Callable[..., FakeWiki]:
    """Route the stage's client to a FakeWiki; returns a factory so a test can swap sites."""
    holder: dict = {}

    def use(fake: FakeWiki) -> FakeWiki:
        holder["fake"] = fake
        return fake

    monkeypatch.setattr(wikipedia, "make_client", lambda *, contact, max_tries: PoliteWikipedia(
        user_agent(contact), policy=RetryPolicy(max_tries=max_tries, backoff=0.0), sleep=lambda s: None,
        transport=httpx.MockTransport(lambda request: holder["fake"](request))))
    return use


def test_classes_source_wikipedia_end_to_end(tmp_path, fake_site):
    fake = fake_site(FakeWiki())
    args = ["classes", "--work", str(tmp_path), "--source", "wikipedia", "--contact", "me@example.org"]
    assert cli_main(args) == 0
    table = pq.read_table(tmp_path / "classes.parquet")
    rows = table.to_pylist()
    pins = read_pinned_pages()
    no_page = {w for w, p in pins.items() if p.title is None}
    assert len(fake.calls) == len({p.title for p in pins.values() if p.title})
    for row in rows:
        if row["wnid"] in no_page:
            assert row["text_source"] != "wikipedia" and row["wikipedia_title"] is None
        else:
            assert row["text_source"] == "wikipedia"
            assert row["wikipedia_title"] == pins[row["wnid"]].title
            assert row["wikipedia_url"].startswith("https://en.wikipedia.org/wiki/")
            assert row["wikipedia_revision"] == 5001 and row["wikipedia_timestamp"] == "2024-05-30T12:34:56Z"
            assert len(row["sentences"]) >= 2
    again = fake_site(FakeWiki())
    assert cli_main(args) == 0 and again.calls == []  # everything cached: no request at all


def test_classes_missing_pages_fail_unless_allowed(tmp_path, fake_site, caplog):
    fake = FakeWiki()
    fake.script["Red panda"] = [httpx.Response(503)] * 5
    fake.pages["Tench"] = MISSING
    fake_site(fake)
    args = ["classes", "--work", str(tmp_path), "--source", "wikipedia", "--contact", "me@example.org"]
    assert cli_main(args) == 1
    assert not (tmp_path / "classes.parquet").exists()
    assert "2 classes have no Wikipedia text" in caplog.text and "--allow-missing" in caplog.text
    summary = (tmp_path / "wikipedia_summary.json").read_text()
    assert "gave up after 5 tries (HTTP 503)" in summary and "missing page" in summary
    fake.script["Red panda"] = [httpx.Response(503)] * 5
    assert cli_main([*args, "--allow-missing"]) == 0
    rows = {r["wnid"]: r for r in pq.read_table(tmp_path / "classes.parquet").to_pylist()}
    for wnid in ("n02509815", "n01440764"):  # red panda and tench keep their labelled fallback
        assert rows[wnid]["text_source"] in (LLM_SOURCE, LEMMA_SOURCE) and rows[wnid]["wikipedia_title"] is None
    assert rows["n01443537"]["text_source"] == "wikipedia"


def test_classes_wikipedia_offline_fails_fast_and_offline_source_works(tmp_path, fake_site, caplog):
    fake = FakeWiki()
    fake.script["Tench"] = [httpx.ConnectError("[Errno -2] Name or service not known")]
    fake_site(fake)
    args = ["classes", "--work", str(tmp_path), "--source", "wikipedia", "--contact", "me@example.org"]
    assert cli_main(args) == 1
    assert "cannot reach https://en.wikipedia.org/w/api.php" in caplog.text
    assert len(fake.calls) == 1 and not (tmp_path / "classes.parquet").exists()
    assert cli_main(["classes", "--work", str(tmp_path), "--source", "offline"]) == 0
    assert "wikipedia" not in pq.read_table(tmp_path / "classes.parquet")["text_source"].to_pylist()


# ----------------------------------------------------------------------------- resolve


def lookup_reply(params: dict) -> dict:
    """prop=info|pageprops for several titles: normalisation, a redirect, a disambiguation page."""
    known = {"Tench": {}, "Red panda": {}, "Crane": {"pageprops": {"disambiguation": ""}},
             "Crane (bird)": {}, "Hammerhead": {"pageprops": {"disambiguation": ""}}}
    redirects = {"Lesser panda": "Red panda"}
    normalized, found, pages = [], [], {}
    for index, title in enumerate(params["titles"].split("|")):
        name = title[0].upper() + title[1:]
        if name != title:
            normalized.append((title, name))
        target = redirects.get(name, name)
        if target != name:
            found.append((name, target))
        if target in known:
            pages[str(100 + index)] = {"pageid": 100 + index, "ns": 0, "title": target, **known[target]}
        else:
            pages[str(-1 - index)] = {"ns": 0, "title": target, "missing": ""}
    reply = query_reply(redirects=found, normalized=normalized)
    reply["query"]["pages"] = pages
    return reply


class FakeResolveWiki(FakeWiki):
    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.calls.append(params)
        if "gsrsearch" in params:
            return httpx.Response(200, json={"batchcomplete": "", "query": {"pages": {
                "7": {"pageid": 7, "ns": 0, "title": "Hammerhead", "index": 1, "pageprops": {"disambiguation": ""}},
                "8": {"pageid": 8, "ns": 0, "title": "Hammerhead shark", "index": 2}}}})
        return httpx.Response(200, json=lookup_reply(params))


def test_resolve_proposes_exact_redirect_skips_disambiguation_and_searches():
    classes = imagenet_classes()
    tench, crane, hammerhead = classes[0], classes[134], classes[4]
    lesser_panda = classes[387]
    fake = FakeResolveWiki()
    proposals = wikipedia_resolve.resolve_all(client(fake), [tench, lesser_panda, crane, hammerhead])
    by_wnid = {p.wnid: p for p in proposals}
    assert (by_wnid[tench.wnid].title, by_wnid[tench.wnid].how) == ("Tench", "exact")
    assert (by_wnid[lesser_panda.wnid].title, by_wnid[lesser_panda.wnid].how) == ("Red panda", "redirect")
    assert (by_wnid[hammerhead.wnid].title, by_wnid[hammerhead.wnid].how) == ("Hammerhead shark", "search")
    # 'crane' is a disambiguation page and the class has no other lemma: search (which skips it too)
    assert by_wnid[crane.wnid].how == "search" and by_wnid[crane.wnid].title != "Crane"
    assert sum(1 for c in fake.calls if "titles" in c) == 1  # one batched lookup for all lemmas
    rows = wikipedia_resolve.differences(proposals, read_pinned_pages())
    assert {r["wnid"] for r in rows} == {crane.wnid}  # only the crane differs from the pinned table


def test_resolve_verify_reports_missing_and_disambiguation(tmp_path, monkeypatch):
    pages = tmp_path / "pages.csv"
    text = pinned_pages_path().read_text(encoding="utf-8")
    text = text.replace("n02012849,Crane (bird),", "n02012849,Crane,").replace(
        "n01440764,Tench,exact,", "n01440764,Lesser panda,manual,test")
    pages.write_text(text, encoding="utf-8")
    fake = FakeResolveWiki()
    monkeypatch.setattr(wikipedia_resolve, "make_client", lambda **kwargs: client(fake))
    out = io.StringIO()
    options = wikipedia_resolve.ResolveOptions(verify=True, pages=pages, contact="me@example.org")
    assert wikipedia_resolve.run(options, out=out) == 1
    rows = {r["wnid"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert rows["n02012849"]["problem"] == "disambiguation"
    assert rows["n01440764"]["problem"] == "redirect" and "Red panda" in rows["n01440764"]["detail"]
    assert rows["n01443537"]["problem"] == "missing"  # 'Goldfish' is unknown to the fake wiki
    assert "n02509815" not in rows  # 'Red panda' is fine
    assert len(fake.calls) == 20 and all(len(c["titles"].split("|")) <= 50 for c in fake.calls)


def test_classes_resolve_subcommand_dispatch(monkeypatch, capsys):
    fake = FakeResolveWiki()
    monkeypatch.setattr(wikipedia_resolve, "make_client", lambda **kwargs: client(fake))
    assert cli_main(["classes", "resolve", "--verify", "--contact", "me@example.org"]) == 1  # most titles unknown
    out = capsys.readouterr().out
    assert out.startswith("wnid,title,problem,detail")
    assert "n02509815,Red panda" not in out  # a title the fake wiki knows is fine
