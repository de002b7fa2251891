"""agi_server.replies: Redis replies typed as the text they are."""

from __future__ import annotations

from agi_server.replies import encodable, range_entries, read_entries, scored, text, text_list, text_or_none, texts


def test_text_takes_decoded_and_raw_replies():
    assert text("a") == "a" and text(b"caf\xc3\xa9") == "café" and text(3) == "3"
    assert text_or_none(None) is None and text_or_none(b"x") == "x"
    assert text_list([b"a", "b"]) == ["a", "b"] and text_list(None) == []


def test_hashes_pairs_and_stream_entries():
    assert texts({b"k": b"v", "n": "1"}) == {"k": "v", "n": "1"} and texts(None) == {}
    assert scored([("a", 1.5), [b"b", "2"]]) == [("a", 1.5), ("b", 2.0)]
    # a claimed entry deleted meanwhile has nil fields: {} (falsy) like the reply
    assert range_entries([(b"1-0", {b"e": b"x"}), ("2-0", None)]) == [("1-0", {"e": "x"}), ("2-0", {})]
    assert range_entries(None) == []
    record = {"a": "b"}
    assert encodable(record) is record


def test_read_replies_in_both_protocols():
    entries = [(b"1-0", {b"e": b"x"}), ("2-0", {"e": "y"})]
    expected = [("1-0", {"e": "x"}), ("2-0", {"e": "y"})]
    assert read_entries([(b"q:1", entries)]) == expected  # RESP2: [[stream, entries], ...]
    assert read_entries({"q:1": [entries]}) == expected  # RESP3: {stream: [entries]}
    assert read_entries({"q:1": entries}) == expected
    assert read_entries(None) == [] and read_entries([]) == []
