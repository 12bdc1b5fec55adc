"""The ad-hoc comparison: form filled from the source and the policy, checks, the background
job (called with a list as ``set_progress``), the stored result and its URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash import Dash, DiskcacheManager, no_update

from dashboard import adhoc, ids, state
from dashboard.app import create_app
from dashboard.pages import compare
from engine.demo import DemoOptions, generate
from engine.service_config import load_service_config
from engine.settings import ROOT
from engine.store import Store, open_store

DATASET = "Run2022/SingleMuon"


def walk(node: Any) -> Iterator[Any]:
    yield node
    kids = node if isinstance(node, (list, tuple)) else getattr(node, "children", None)
    if isinstance(node, str) or kids is None:
        return
    for c in kids if isinstance(kids, (list, tuple)) else [kids]:
        yield from walk(c)


def text(node: Any) -> str:
    return "".join(str(n) for n in walk(node) if isinstance(n, (str, int)))


def by_id(node: Any, cid: str) -> Any:
    return next(n for n in walk(node) if getattr(n, "id", None) == cid)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five demo runs of CSC (357106 is not certified)."""
    out = tmp_path_factory.mktemp("demo")
    generate(out, DemoOptions(runs=5, subsystems=("CSC",)))
    return out


@pytest.fixture
def cmp_store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def cmp_app(tmp_path: Path, demo: Path, cmp_store: Store) -> Dash:
    toml = tmp_path / "autodqm.toml"
    toml.write_text(
        f"""
[storage]
cache_dir = "store"
[source]
kind = "local"
path = "{demo}"
[certification]
kind = "golden_json"
path = "{demo / "golden.json"}"
[[watch]]
series = "Run2022"
sample = "SingleMuon"
subsystems = ["CSC"]
config_dir = "{ROOT / "config" / "subsystems"}"
references = {{ policy = "previous_good", count = 2 }}
"""
    )
    return create_app(load_service_config(toml), cmp_store)


def test_form_is_filled_from_the_source_and_the_policy(cmp_app: Dash) -> None:
    with cmp_app.server.test_request_context("/compare"):
        page = compare.layout()
    run = by_id(page, ids.COMPARE_RUN)
    assert [o["value"] for o in run.options] == [357118, 357117, 357111, 357106, 357102]
    assert run.options[0]["label"] == "357118 · certified"
    assert run.options[3]["label"] == "357106"  # in the source, not certified
    assert run.value == 357118
    assert sorted(by_id(page, ids.COMPARE_REFS).value) == [357111, 357117]
    assert "previous_good" in text(by_id(page, ids.COMPARE_REFS_WHY))
    assert by_id(page, ids.COMPARE_DATASET).value == DATASET
    assert by_id(page, ids.COMPARE_SUBSYSTEM).options == ["CSC"]
    assert by_id(page, ids.COMPARE_CANCEL).disabled is True


def test_suggest_callback_for_another_run(cmp_app: Dash) -> None:
    with cmp_app.server.test_request_context("/compare"):
        refs, why = compare.on_suggest(1, 357117, "CSC")
        assert sorted(refs) == [357102, 357111]
        assert why == "previous_good: the 2 latest certified runs before 357117"
        assert compare.on_suggest(1, None, "CSC")[0] is no_update
        assert compare.on_subsystem("CSC")[0][0]["value"] == 357118
        assert compare.on_dataset(DATASET, "CSC") == (["CSC"], "CSC")


@pytest.mark.parametrize(
    ("run", "refs", "words"),
    [
        (357118, [357118, 357111], "Reference run 357118 is the data run itself"),
        (357118, [], "Reference runs: choose at least one"),
        (999999, [357111], "the source has 5 runs, 357102 to 357118"),
        ("3571a8", [357111], "Data run: '3571a8' is not a run number"),
        (None, [357111], "Data run: choose the run to check"),
        (357118, ["12x"], "Reference run: '12x' is not a run number"),
        (357118, [357000], "Reference run(s) 357000: no DQM file"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_clear_message(
    cmp_app: Dash, run: Any, refs: list[Any], words: str
) -> None:
    with cmp_app.server.test_request_context("/compare"):
        choices = adhoc.Choices.of(state.get())
        with pytest.raises(state.BadInput) as err:
            adhoc.check_request(choices, DATASET, "CSC", run, refs)
    assert words in str(err.value)


def test_the_background_job_compares_stores_and_links_the_result(
    cmp_app: Dash, cmp_store: Store
) -> None:
    progress: list[tuple[int, str]] = []
    with cmp_app.server.test_request_context("/compare"):
        token = state.get().token
        message, path = compare.start(
            progress.append, 1, token, DATASET, "CSC", 357118, [357111, 357117], "ann"
        )
    job = path.removeprefix("/compare/")
    assert adhoc.JOB_ID.match(job)
    assert f"/compare/{job}" in text(message)
    values = [v for v, _ in progress]
    assert values == sorted(values)
    assert values[-1] == 100
    words = [w for _, w in progress]
    assert "fetching file 1 of 3 (run 357118)" in words
    assert "comparing run 357118 with 2 reference runs" in words
    record = cmp_store.get_adhoc(job)
    assert record is not None
    assert (record["data_run"], record["reference_runs"], record["by"]) == (
        357118,
        [357111, 357117],
        "ann",
    )
    assert record["report"]["results"]
    assert cmp_store.audit()[0]["action"] == "compare"
    assert cmp_store.runs() == []  # ad-hoc results never enter the monitoring results
    with cmp_app.server.test_request_context(path):
        page = compare.layout_result(job=job)
    assert page.id == ids.COMPARE_RESULT
    assert "Ad-hoc comparison · run 357118 · CSC" in text(page)
    assert "references 357111, 357117" in text(page)
    rows = [n for n in walk(page) if type(n).__name__ == "Tr"][1:]
    statuses = [text(r.children[0]) for r in rows]
    order = {"✗ flagged": 0, "! error": 1, "○ skipped": 2, "✓ ok": 3}
    assert [order[s] for s in statuses] == sorted(order[s] for s in statuses)
    links = {n.href for n in walk(page) if getattr(n, "href", None)}
    assert f"/compare/{job}" in links
    assert any("run=357118&refs=357111,357117" in h for h in links)


def test_bad_input_in_the_background_job_is_a_message(cmp_app: Dash, cmp_store: Store) -> None:
    progress: list[tuple[int, str]] = []
    with cmp_app.server.test_request_context("/compare"):
        token = state.get().token
        message, path = compare.start(
            progress.append, 1, token, DATASET, "CSC", 357118, [357118], ""
        )
    assert path is no_update
    assert "Cannot compare: Reference run 357118 is the data run itself" in text(message)
    assert progress == [(2, "checking the inputs")]
    assert cmp_store.audit() == []


@pytest.mark.parametrize(
    ("job", "words"),
    [
        ("0123456789ab", "no ad-hoc comparison '0123456789ab' is stored"),
        ("not-a-job", "'not-a-job' is not a comparison id"),
    ],
)
def test_unknown_result_urls_get_a_message(cmp_app: Dash, job: str, words: str) -> None:
    with cmp_app.server.test_request_context(f"/compare/{job}"):
        page = compare.layout_result(job=job)
    assert page.id == ids.MESSAGE_PAGE
    assert words in text(page)


def test_a_link_with_bad_parts_fills_the_form_and_says_what_is_wrong(cmp_app: Dash) -> None:
    with cmp_app.server.test_request_context("/compare"):
        page = compare.layout(run="357118", refs="357118")
        assert "is the data run itself" in text(by_id(page, ids.COMPARE_MESSAGE))
        page = compare.layout(run="357117", refs="357102,357111", subsystem="CSC")
        assert by_id(page, ids.COMPARE_REFS).value == [357102, 357111]
        assert by_id(page, ids.COMPARE_MESSAGE).children is None


def test_without_a_service_config_the_page_explains(app: Dash) -> None:
    with app.server.test_request_context("/compare"):
        page = compare.layout()
    assert "need the service config" in text(page)


def test_the_app_runs_background_callbacks_from_the_store_directory(
    cmp_app: Dash, cmp_store: Store
) -> None:
    manager = cmp_app._background_manager
    assert isinstance(manager, DiskcacheManager)
    assert Path(manager.handle.directory) == Path(cmp_store.directory) / "bg"
    client = cmp_app.server.test_client()
    assert client.get("/compare").status_code == 200
    deps = client.get("/_dash-dependencies").get_json()
    start = next(d for d in deps if "compare-message.children" in d["output"])
    assert start["background"]["interval"] == 400
