"""The DQM GUI listing parser and layout helpers (pure functions, no server)."""

from __future__ import annotations

import pytest

from engine.errors import FetchError
from engine.sources.listing import (
    check_name,
    closest_runs,
    hundreds_dir,
    normalise_date,
    parse_file_name,
    parse_listing,
    tenthousands_dir,
)

PAGE = """<html><body><table>
<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>
<tr><td><a href='/dqm/offline/data/browse/ROOT/OfflineData/'>../</a></td><td>-</td><td></td></tr>
<tr><td><a href='/dqm/offline/data/browse/ROOT/OfflineData/Run2022/SingleMuon/0003571xx/'>0003571xx/</a></td><td>-</td><td>2022-Aug-06 12:00:01</td></tr>
<TR>
  <TD><A HREF="/x/DQM_V0001_R000357130__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root">DQM_V0001_R000357130__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root</A></TD>
  <TD> 123456 </TD><TD>Sat Aug  6 12:00:02 2022 UTC</TD><TD>extra</TD>
</TR>
<tr><td><a href=/x/a&amp;b.root>a&amp;b.root</a></td><td>1,024</td><td>2022-08-06T12:00:03Z</td></tr>
<tr><td>no link</td><td>5</td><td>x</td></tr>
<tr><td><a href='/x/odd'>odd</a></td><td>big</td><td>x</td></tr>
</table></body></html>"""


def test_parse_listing_is_lenient() -> None:
    rows = parse_listing(PAGE)
    assert [(r.name, r.size, r.is_dir) for r in rows] == [
        ("0003571xx", None, True),
        ("DQM_V0001_R000357130__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root", 123456, False),
        ("a&b.root", 1024, False),
    ]
    assert rows[0].href.endswith("/0003571xx/")
    assert rows[2].href == "/x/a&b.root"
    assert [r.date for r in rows] == [
        "2022-08-06T12:00:01+00:00",
        "2022-08-06T12:00:02+00:00",
        "2022-08-06T12:00:03+00:00",
    ]


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2022-Aug-06 12:00:01", "2022-08-06T12:00:01+00:00"),
        ("2022-08-06 12:00:01 UTC", "2022-08-06T12:00:01+00:00"),
        ("2022-08-06T14:00:01+02:00", "2022-08-06T12:00:01+00:00"),
        ("yesterday", "yesterday"),
    ],
)
def test_normalise_date(text: str, iso: str) -> None:
    assert normalise_date(text) == iso


def test_file_names_and_directories() -> None:
    name = "DQM_V0001_R000357130__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root"
    assert parse_file_name(name, "Run2022", "SingleMuon") == (357130, "Run2022C-PromptReco-v1")
    assert parse_file_name(name, "Run2022", "ZeroBias") is None
    assert parse_file_name("DQM_V0001_L1TEMU_R000357130.root", "online", "L1TEMU") == (
        357130,
        "online",
    )
    assert parse_file_name("DQM_V0001_L1TEMU_R000357130.root", "online", "L1T") is None
    assert hundreds_dir(357130) == "0003571xx"
    assert tenthousands_dir(357130) == "00035xxxx"


@pytest.mark.parametrize("bad", ["..", "../etc", "a/b", ".", "", ".lock", "a\\b"])
def test_check_name_refuses_traversal(bad: str) -> None:
    with pytest.raises(FetchError, match="refusing unsafe name"):
        check_name(bad, "https://server/dir/")


def test_closest_runs() -> None:
    assert closest_runs(357130, [357100, 357129, 357131, 357200]) == [357129, 357131]
    assert closest_runs(357130, [357100, 357101]) == [357101]
    assert closest_runs(357130, []) == []
