"""The pure text rules: cleaning, eligibility, caption text and class sentences."""

import pytest

from imagenet_multimodal.text import (
    caption_text,
    choose_sentences,
    clean_text,
    count_words,
    is_eligible,
    split_sentences,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('My <a href="http://flickr.com/x">tench</a> catch', "My tench catch"),
        ("Fish &amp; chips &quot;today&quot;", 'Fish & chips "today"'),
        ("&lt;b&gt;bold&lt;/b&gt; text", "bold text"),
        ("see http://example.com/a?b=1 and www.foo.org/x now", "see and now"),
        ("  lots \n of\t\tspace\u00a0here ", "lots of space here"),
        ("a < b and c > d", "a < b and c > d"),
        ("東京の金魚 Золотая рыбка", "東京の金魚 Золотая рыбка"),
        ("", ""),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a tench (http://x.org)", "a tench ()"),
        ("see: http://x.org.", "see: ."),
        ("photo http://x.org/a, taken http://y.org/b; nice http://z.org!", "photo , taken ; nice !"),
        ("[www.x.org/a] and http://x.org/?q=1...", "[] and ..."),
        # a bracket that the URL opened is the URL's
        ("Tench (see http://en.wikipedia.org/wiki/Tench_(fish)) here", "Tench (see ) here"),
        ("a <!-- hidden\n<b>comment</b> --> b", "a b"),
        ("&lt;!-- escaped --&gt; text", "text"),
        ("example.com and flickr.com stay", "example.com and flickr.com stay"),  # bare domains are words
    ],
)
def test_punctuation_after_a_url_stays_and_comments_go(raw, clean):
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # angle brackets around words are text, not HTML
        ("Goldfish <Carassius auratus>", "Goldfish <Carassius auratus>"),
        ("Goldfish at <Lake Geneva> today", "Goldfish at <Lake Geneva> today"),
        ("sizes 3<5 and 7>2 cm", "sizes 3<5 and 7>2 cm"),
        ("<fish> and <tench/>", "<fish> and <tench/>"),
        ("<<Goldfish>> in tank", "<<Goldfish>> in tank"),
        # inline elements leave no space, block elements do
        ("Ten<b>ch</b> fish", "Tench fish"),
        ("<I>Tinca</I> tinca<br/>caught<BR>today<p class='x'>more</p>", "Tinca tinca caught today more"),
        ('<img src="a.jpg" alt="x"/>Tench', "Tench"),
        # URLs next to other scripts and markup
        ("金魚 http://x.com/a、とても可愛い", "金魚 、とても可愛い"),
        ("詳しくはこちらhttp://x.com/a 金魚の写真", "詳しくはこちら 金魚の写真"),
        ("Website:http://x.com|Blog:http://y.com", "Website:|Blog:"),
        ("[url=http://x.com]Goldfish bowl[/url]", "[url=]Goldfish bowl[/url]"),
        ("www.flickr.com/photos/x/123」金魚", "」金魚"),
        ("Karausche https://de.wikipedia.org/wiki/Karausche_(Fisch) Süßwasser", "Karausche Süßwasser"),
        ("карась http://x.ru/путь/страница в пруду", "карась в пруду"),
        # embed code of old Flickr descriptions: no text of it stays
        ('<object width="425"><param name="movie" value="http://www.youtube.com/v/abc"></param><embed '
         'src="http://www.youtube.com/v/abc" type="application/x-shockwave-flash"></embed></object> My goldfish',
         "My goldfish"),
        ('<iframe src="http://x.com/e" frameborder="0"></iframe>Goldfish <nobr>video</nobr><wbr>',
         "Goldfish video"),
        ("<script>var x = 1 < 2;</script><style>p {color: red}</style>Goldfish tank", "Goldfish tank"),
    ],
)
def test_cleaning_keeps_text_that_only_looks_like_markup(raw, clean):
    assert clean_text(raw) == clean


def test_text_without_spaces_is_one_word():
    """The paper's white-space rule: a Japanese title without spaces is one word."""
    assert count_words("東京の公園で金魚を見た") == 1
    assert is_eligible("東京の公園で金魚を見た", "") == (False, "one_word")


def test_count_words_ignores_punctuation_only_tokens():
    assert count_words("- -- !!") == 0
    assert count_words("IMG_1234") == 1
    assert count_words("red panda, eating!") == 3
    assert count_words("a b c d", stop_at=2) == 2


@pytest.mark.parametrize(
    ("title", "description", "expected"),
    [
        ("red panda", "", (True, "eligible")),
        ("panda", "eating bamboo", (True, "eligible")),
        ("panda", "bamboo", (False, "one_word")),
        ("IMG_1234", "", (False, "one_word")),
        ("", "", (False, "no_text")),
        ("--", "!!", (False, "no_text")),
    ],
)
def test_is_eligible(title, description, expected):
    assert is_eligible(title, description) == expected


def test_caption_text_joins_present_parts():
    assert caption_text("Title", "", ()) == "Title"
    assert caption_text("Title", "desc", ("tag1", "tag2")) == "Title desc tag1 tag2"
    assert caption_text("", "desc") == "desc"


def test_sentences_do_not_split_on_abbreviations_or_decimals():
    text = (
        "The red panda lives in the Himalayas, e.g. Nepal. It weighs approx. 3.7 kg. "
        "St. Bernard dogs are larger, about 64.5 cm tall. Dr. Smith saw one in the U.S. in 1990."
    )
    assert split_sentences(text) == [
        "The red panda lives in the Himalayas, e.g. Nepal.",
        "It weighs approx. 3.7 kg.",
        "St. Bernard dogs are larger, about 64.5 cm tall.",
        "Dr. Smith saw one in the U.S. in 1990.",
    ]


def test_sentences_hold_no_line_breaks():
    text = "The fox lives widely. Its range includes:\nEurope\nAsia and\t Africa.\n\nIt eats  mice."
    assert split_sentences(text) == [
        "The fox lives widely.", "Its range includes: Europe Asia and Africa.", "It eats mice."]
    assert all("\n" not in s for s in choose_sentences(text, max_sentences=2))


def test_choose_sentences_keeps_longest_in_text_order():
    text = "Short one. This is the longest sentence of them all. Middle length one here. Tiny."
    assert choose_sentences(text, max_sentences=2) == [
        "This is the longest sentence of them all.",
        "Middle length one here.",
    ]
    assert choose_sentences("Only one sentence here.", max_sentences=10) == ["Only one sentence here."]
    assert choose_sentences("", max_sentences=10) == []
    with pytest.raises(ValueError, match="max_sentences"):
        choose_sentences(text, max_sentences=0)
