"""Pure text rules: caption cleaning, eligibility and class-sentence choice.

No model and no I/O here: every function takes strings and returns strings, numbers or
booleans, so each rule can be tested on inline examples.

Words are counted as the paper does, by white space: a script written without spaces (Chinese,
Japanese, Thai) counts as one word per unbroken run, so a Japanese title without spaces is a
``one_word`` caption however long it is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

import syntok.segmenter

# HTML elements (HTML 4 and 5, obsolete ones included: old Flickr descriptions hold video embed
# code), not any <word ...>: "Goldfish <Carassius auratus>" and "<Lake Geneva>" are text. Inline
# elements go without a trace ("Ten<b>ch</b>" is "Tench"), the others leave a space, and what an
# embed, script or style element holds is no text at all
_INLINE = ("a|abbr|acronym|b|bdi|bdo|big|blink|cite|code|data|del|dfn|em|font|i|ins|kbd|label|mark|nobr|q|rp|rt"
           "|ruby|s|samp|small|span|strike|strong|sub|sup|time|tt|u|var|wbr")
_BLOCK = ("address|applet|area|article|aside|audio|base|basefont|blockquote|body|br|button|canvas|caption"
          "|center|col|colgroup|datalist|dd|details|dialog|dir|div|dl|dt|embed|fieldset|figcaption|figure"
          "|footer|form|frame|frameset|h[1-6]|head|header|hgroup|hr|html|iframe|img|input|isindex|keygen"
          "|legend|li|link|main|map|marquee|menu|meta|meter|nav|noembed|noframes|noscript|object|ol"
          "|optgroup|option|output|p|param|picture|pre|progress|section|select|source|summary|table|tbody"
          "|td|template|textarea|tfoot|th|thead|title|tr|track|ul|video|xmp")
_ATTRIBUTES = r"(?:\s[^<>]*)?/?>"  # attributes need a space after the name; "<br/>" closes itself
_INLINE_TAG = re.compile(rf"</?(?:{_INLINE}){_ATTRIBUTES}", re.IGNORECASE)
_BLOCK_TAG = re.compile(rf"</?(?:{_BLOCK}){_ATTRIBUTES}", re.IGNORECASE)
_NOT_TEXT = re.compile(r"<(script|style|object|iframe|noscript|noembed)\b[^<>]*>.*?</\1\s*>",
                       re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# a URL starts after no ASCII letter or digit (so right after CJK text too, where \b finds no boundary)
# and runs over URL characters only (RFC 3986, %-escapes, Latin, Greek and Cyrillic letters of IRIs):
# not over CJK text, full-width punctuation, "|" or the "]" of [url=...] markup
_URL = re.compile(r"(?<![A-Za-z0-9])(?:(?:https?|ftp)://|www\.)"
                  r"[A-Za-z0-9\-._~:/?#@!$&()*+,;=%\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)"  # punctuation after a link belongs to the sentence, not the link
_OPENING = {")": "("}
_MARKUP = re.compile(r"[<&]|://|www\.", re.IGNORECASE)
_ALNUM = re.compile(r"[^\W_]|\d")


def clean_text(text: str) -> str:
    """Clean one Flickr field: strip HTML tags and comments, unescape entities, remove URLs, fold white space.

    Unicode is kept as it is (non-Latin scripts, accents, emoji).

    >>> clean_text('A <a href="http://x.org">tench</a> &amp; friend  http://flic.kr/p/1')
    'A tench & friend'
    """
    if _MARKUP.search(text):
        text = _strip_markup(text)
        text = _strip_markup(html.unescape(text))  # markup that was escaped in the source (&lt;b&gt;)
        text = _URL.sub(_drop_url, text)
    return " ".join(text.split())


def _strip_markup(text: str) -> str:
    return _INLINE_TAG.sub("", _BLOCK_TAG.sub(" ", _NOT_TEXT.sub(" ", _COMMENT.sub(" ", text))))


def _drop_url(match: re.Match[str]) -> str:
    """Remove a URL but keep the punctuation after it: ``(http://x.org).`` -> ``().``.

    A closing bracket stays part of the URL when the URL opened it (``.../wiki/Tench_(fish)``).
    Bare ``domain.tld`` words are not URLs here: too many ordinary words look like them.
    """
    url = match.group()
    end = len(url)
    while end and url[end - 1] in _URL_TRAILING:
        opening = _OPENING.get(url[end - 1])
        if opening and url.count(opening, 0, end) >= url.count(url[end - 1], 0, end):
            break
        end -= 1
    return url[end:]


def count_words(text: str, *, stop_at: int | None = None) -> int:
    """Count white-space separated tokens holding at least one letter or digit.

    ``stop_at`` ends the count early once that many words are seen.
    """
    count = 0
    for token in text.split():
        if _ALNUM.search(token):
            count += 1
            if stop_at is not None and count >= stop_at:
                break
    return count


def is_eligible(title: str, description: str) -> tuple[bool, str]:
    """The paper's eligibility rule on cleaned fields: title or description holds > 1 word.

    Returns ``(eligible, reason)`` with reason ``eligible``, ``one_word`` or ``no_text``.
    """
    if count_words(title, stop_at=2) > 1 or count_words(description, stop_at=2) > 1:
        return True, "eligible"
    if count_words(title, stop_at=1) or count_words(description, stop_at=1):
        return False, "one_word"
    return False, "no_text"


def caption_text(title: str, description: str, tags: Sequence[str] = ()) -> str:
    """Caption text = title + " " + description (+ " " + tags when given), all cleaned."""
    parts = [title, description, *tags]
    return " ".join(part for part in parts if part)


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences with syntok (abbreviations and decimals do not split).

    White space inside a sentence is folded to single spaces: syntok splits paragraphs only on
    blank lines, so a list such as ``"Its range includes:\nEurope\nAsia"`` is one sentence.
    """
    sentences = []
    for paragraph in syntok.segmenter.process(text):
        for sentence in paragraph:
            joined = " ".join("".join(token.spacing + token.value for token in sentence).split())
            if count_words(joined, stop_at=1):
                sentences.append(joined)
    return sentences


def choose_sentences(text: str, *, max_sentences: int = 10) -> list[str]:
    """The class sentences: the ``max_sentences`` longest sentences of ``text``, in text order.

    The paper uses 2-10 sentences per class; a text with fewer sentences gives what it has
    (possibly none, which the caller reports).
    """
    if max_sentences < 1:
        raise ValueError(f"max_sentences must be at least 1, got {max_sentences}")
    sentences = split_sentences(text)
    longest = sorted(range(len(sentences)), key=lambda i: (-len(sentences[i]), i))[:max_sentences]
    return [sentences[i] for i in sorted(longest)]
