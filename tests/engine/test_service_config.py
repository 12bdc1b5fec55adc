"""Service config (TOML): the documented example loads, and every bad input is one clear line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from engine.certification import GoldenJSONSource, SourceCertification
from engine.errors import ConfigError
from engine.runregistry import RunRegistrySource
from engine.service_config import (
    AllRunsCertification,
    load_service_config,
    make_certification,
    make_source,
)
from engine.settings import ROOT
from engine.sources.dqmgui import DQMGUISource
from engine.sources.local import LocalSource

EXAMPLE = ROOT / "config" / "autodqm.toml"

SUBSYSTEM = {
    "main_gdir": "DQMData/Run {0}/CSC/Run summary/CSCOfflineMonitor/",
    "hists": [{"path": "Segments/hSnhits"}],
}

BASE = """\
[storage]
cache_dir = "var/cache"
data_dir = "var/data"
quota_gb = 2

[source]
kind = "local"
path = "demo"

[certification]
kind = "golden_json"
path = "demo/golden.json"
poll_seconds = 5

[[watch]]
series = "Run2022"
sample = "SingleMuon"
subsystems = ["CSC", "RPC"]
config_dir = "subs"
references = { policy = "previous_good", count = 3 }

[alerts]
webhooks = ["http://127.0.0.1:9/hook"]
email_to = ["oncall@example.org"]

[scheduler]
workers = 3
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory with subsystem configs CSC and RPC and a demo folder."""
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("CSC", "RPC"):
        (subs / f"{name}.json").write_text(json.dumps(SUBSYSTEM))
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "golden.json").write_text('{"357130": [[1, 10]]}')
    return tmp_path


def write(site: Path, text: str) -> Path:
    p = site / "svc.toml"
    p.write_text(text)
    return p


def edit(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


def error_of(site: Path, text: str) -> str:
    p = write(site, text)
    with pytest.raises(ConfigError) as info:
        load_service_config(p)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{p}: ")
    return msg[len(f"{p}: ") :]


def test_example_config_loads_and_points_at_the_demo_data() -> None:
    cfg = load_service_config(EXAMPLE)
    assert cfg.source.kind == "local"
    assert cfg.source.path == ROOT / "var" / "demo"
    assert cfg.certification.path == ROOT / "var" / "demo" / "golden.json"
    assert cfg.storage.cache_dir == ROOT / "var" / "cache"
    (watch,) = cfg.watches
    assert watch.dataset == "Run2022/SingleMuon"
    assert watch.subsystems == ("CSC", "DT", "RPC", "EMTF")
    assert set(watch.configs) == {"CSC", "DT", "RPC", "EMTF"}
    assert cfg.alerts.webhooks == ()
    assert cfg.alerts.email_to == ()


def test_every_key_of_the_example_is_commented() -> None:
    for line in EXAMPLE.read_text().splitlines():
        if re.match(r"^[a-z_]+ = ", line):
            assert "#" in line, f"key without a comment: {line}"


def test_valid_config_resolves_paths_against_its_file(site: Path, monkeypatch) -> None:
    monkeypatch.chdir("/")
    cfg = load_service_config(write(site, BASE))
    assert cfg.storage.cache_dir == site / "var" / "cache"
    assert cfg.storage.data_dir == site / "var" / "data"
    assert cfg.storage.quota_gb == 2.0
    assert cfg.source.path == site / "demo"
    assert cfg.certification.path == site / "demo" / "golden.json"
    assert cfg.certification.poll_seconds == 5.0
    assert cfg.certification.name == "golden_json"
    (watch,) = cfg.watches
    assert watch.config_dir == site / "subs"
    assert watch.configs["CSC"].name == "CSC"
    assert watch.policy_for("CSC").count == 3
    assert cfg.alerts.webhooks == ("http://127.0.0.1:9/hook",)
    assert cfg.alerts.min_severity == "flagged"
    assert cfg.alerts.max_outliers == 5
    assert cfg.scheduler.workers == 3
    assert cfg.scheduler.max_attempts == 5


def test_absolute_and_home_paths_are_kept(site: Path) -> None:
    cfg = load_service_config(write(site, edit('path = "demo"', f'path = "{site / "demo"}"')))
    assert cfg.source.path == site / "demo"


def test_malformed_toml_names_line_and_column(site: Path) -> None:
    msg = error_of(site, BASE.replace("workers = 3", "workers = = 3"))
    assert re.match(r"line \d+ column \d+: ", msg), msg
    line = int(msg.split()[1])
    assert BASE.splitlines()[line - 1] == "workers = 3"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        load_service_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("[scheduler]", "[schedular]", "schedular: unknown section (did you mean 'scheduler'?)"),
        (
            "quota_gb = 2",
            "quota_bg = 2",
            "storage.quota_bg: unknown key (did you mean 'quota_gb'?)",
        ),
        ("workers = 3", "worker = 3", "scheduler.worker: unknown key (did you mean 'workers'?)"),
        (
            'path = "demo"\n',
            'path = "demo"\nurl = "https://x/"\n',
            "source.url: unknown key for kind 'local'",
        ),
        ("count = 3 }", "cuont = 3 }", "watch[0].references.cuont: not a setting of policy"),
    ],
)
def test_unknown_names_suggest_the_closest(site: Path, old: str, new: str, expected: str) -> None:
    assert expected in error_of(site, edit(old, new))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("quota_gb = 2", 'quota_gb = "2"', "storage.quota_gb: expected a number, found a string '2'"),
        ("workers = 3", "workers = 2.5", "scheduler.workers: expected an integer, found a number 2.5"),
        ("workers = 3", "workers = true", "scheduler.workers: expected an integer, found a boolean"),
        ('subsystems = ["CSC", "RPC"]', 'subsystems = "CSC"', "watch[0].subsystems: expected an array"),
        ('subsystems = ["CSC", "RPC"]', "subsystems = [1]", "watch[0].subsystems[0]: expected a non-empty string"),
        ('path = "demo"', "path = 3", "source.path: expected a string, found an integer 3"),
        ("webhooks = [", 'webhooks = ["ftp://x", ', "alerts.webhooks[0]: expected an http:// or https:// URL"),
        ('email_to = ["oncall@example.org"]', 'email_to = ["oncall"]', "alerts.email_to[0]: expected an email address"),
    ],
)  # fmt: skip
def test_wrong_types(site: Path, old: str, new: str, expected: str) -> None:
    assert expected in error_of(site, edit(old, new))


def test_section_that_is_not_a_table(site: Path) -> None:
    text = "scheduler = 3\n" + BASE.replace("[scheduler]\nworkers = 3\n", "")
    assert error_of(site, text) == "scheduler: expected a table [scheduler], found an integer"
    text = "[watch]\n" + BASE[: BASE.index("[[watch]]")]
    assert error_of(site, text) == "watch: expected an array of tables [[watch]], found a table"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('kind = "local"', 'kind = "lcoal"', "source.kind: expected one of 'local', 'dqmgui', found 'lcoal' (did you mean 'local'?)"),
        ('kind = "golden_json"', 'kind = "golden"', "certification.kind: expected one of 'golden_json', 'runregistry', 'all', found 'golden' (did you mean 'golden_json'?)"),
        ("[alerts]", '[alerts]\nmin_severity = "bad"', "alerts.min_severity: expected one of 'flagged', 'error', 'skipped'"),
        ('policy = "previous_good"', 'policy = "previous"', "watch[0].references.policy: unknown policy 'previous' (did you mean 'previous_good'?)"),
    ],
)  # fmt: skip
def test_kind_not_one_of_the_choices(site: Path, old: str, new: str, expected: str) -> None:
    assert expected in error_of(site, edit(old, new))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('kind = "local"\npath = "demo"', 'kind = "dqmgui"', "source.url: missing; the DQM GUI file server"),
        ('kind = "local"\npath = "demo"', 'kind = "local"', "source.path: missing; the data directory"),
        ('path = "demo/golden.json"', "", "certification.path: expected exactly one of path (a file) or url"),
        ('path = "demo/golden.json"', 'path = "demo/golden.json"\nurl = "https://x/g.json"', "certification.path: expected exactly one of path"),
        ('kind = "golden_json"\npath = "demo/golden.json"', 'kind = "runregistry"', "certification.dataset_class: missing; e.g. 'Collisions22'"),
        ('kind = "golden_json"\npath = "demo/golden.json"', 'kind = "runregistry"\ndataset_class = "Collisions22"', "certification.name_like: missing"),
        ('kind = "golden_json"\npath = "demo/golden.json"', 'kind = "runregistry"\ndataset_class = "C"\nname_like = "/x%"\nclient_id = "app"', "certification.client_secret_env: missing"),
        ('kind = "golden_json"\npath = "demo/golden.json"', 'kind = "runregistry"\ndataset_class = "C"\nname_like = "/x%"\nstates = ["DONE"]', "certification.states: unknown state 'DONE'"),
        ('series = "Run2022"\n', "", "watch[0].series: missing; the era"),
        ('subsystems = ["CSC", "RPC"]', "subsystems = []", "watch[0].subsystems: expected at least one subsystem"),
    ],
)  # fmt: skip
def test_missing_required_keys_per_kind(site: Path, old: str, new: str, expected: str) -> None:
    assert expected in error_of(site, edit(old, new))


@pytest.mark.parametrize("section", ["source", "certification"])
def test_missing_required_section(site: Path, section: str) -> None:
    start = BASE.index(f"[{section}]")
    end = BASE.index("[", start + 3)
    assert f"{section}: missing section; add [" in error_of(site, BASE[:start] + BASE[end:])


def test_missing_watch(site: Path) -> None:
    text = BASE[: BASE.index("[[watch]]")] + BASE[BASE.index("[alerts]") :]
    assert error_of(site, text).startswith("watch: missing section; add [[watch]]")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("quota_gb = 2", "quota_gb = -1", "storage.quota_gb: expected a number > 0, found -1"),
        ("quota_gb = 2", "quota_gb = 0", "storage.quota_gb: expected a number > 0, found 0"),
        ("poll_seconds = 5", "poll_seconds = -5", "certification.poll_seconds: expected a number > 0, found -5"),
        ("poll_seconds = 5", "poll_seconds = nan", "certification.poll_seconds: expected a number, found"),
        ("workers = 3", "workers = 0", "scheduler.workers: expected an integer >= 1, found 0"),
        ("[alerts]", "[alerts]\nsmtp_port = 70000", "alerts.smtp_port: expected an integer from 1 to 65535"),
    ],
)  # fmt: skip
def test_negative_or_zero_numbers(site: Path, old: str, new: str, expected: str) -> None:
    assert expected in error_of(site, edit(old, new))


def test_watch_of_an_unknown_subsystem_suggests_one_from_its_config_dir(site: Path) -> None:
    msg = error_of(site, edit('["CSC", "RPC"]', '["CSC", "RCP"]'))
    assert msg == (
        f"watch[0].subsystems[1]: unknown subsystem 'RCP': no RCP.json in {site / 'subs'} "
        "(available: CSC, RPC) (did you mean 'RPC'?)"
    )


def test_watch_config_dir_must_exist(site: Path) -> None:
    msg = error_of(site, edit('config_dir = "subs"', 'config_dir = "nowhere"'))
    assert msg == f"watch[0].config_dir: no such directory {str(site / 'nowhere')!r}"


def test_same_subsystem_watched_twice(site: Path) -> None:
    msg = error_of(site, edit('["CSC", "RPC"]', '["CSC", "CSC"]'))
    assert "watch[0].subsystems[1]: 'CSC' is already watched for Run2022/SingleMuon" in msg


def test_broken_subsystem_config_gives_its_own_error_after_the_watch(site: Path) -> None:
    bad = dict(SUBSYSTEM, hists=[{"path": "Segments/hSnhits", "comparators": ["ks"]}])
    (site / "subs" / "RPC.json").write_text(json.dumps(bad))
    msg = error_of(site, BASE)
    assert msg.startswith(f"watch[0].subsystems[1]: {site / 'subs' / 'RPC.json'}: hists[0]")
    assert "unknown comparator 'ks' (did you mean 'ks_test'?)" in msg


def test_subsystem_config_that_is_not_json(site: Path) -> None:
    (site / "subs" / "CSC.json").write_text("{oops")
    msg = error_of(site, BASE)
    assert msg.startswith(f"watch[0].subsystems[0]: {site / 'subs' / 'CSC.json'}: line 1 column 2")


def test_make_source_and_certification(site: Path) -> None:
    cfg = load_service_config(write(site, BASE))
    src = make_source(cfg)
    assert isinstance(src, LocalSource)
    assert src.root == site / "demo"
    cert = make_certification(cfg, {"seen": {"357100": [[1, 5]]}})
    assert isinstance(cert, GoldenJSONSource)
    update = cert.poll()
    assert update.new_runs == [357130]


def test_make_source_local_directory_missing(site: Path) -> None:
    shutil.rmtree(site / "demo")
    cfg = load_service_config(write(site, BASE))
    with pytest.raises(ConfigError, match=r"svc.toml: source.path: no such directory"):
        make_source(cfg)


def test_make_source_dqmgui_uses_the_data_dir(site: Path) -> None:
    text = edit('kind = "local"\npath = "demo"', 'kind = "dqmgui"\nurl = "https://127.0.0.1:1/"')
    cfg = load_service_config(write(site, text))
    src = make_source(cfg)
    assert isinstance(src, DQMGUISource)
    assert src.cache.directory == site / "var" / "data"
    assert src.cache.quota_bytes == 2_000_000_000


def test_make_certification_runregistry_and_all(site: Path, monkeypatch) -> None:
    text = edit(
        'kind = "golden_json"\npath = "demo/golden.json"',
        'kind = "runregistry"\ndataset_class = "Collisions22"\nname_like = "/PromptReco/%"',
    )
    cert = make_certification(load_service_config(write(site, text)))
    assert isinstance(cert, RunRegistrySource)
    assert cert.dataset_class == "Collisions22"
    assert cert.states == ("COMPLETED",)
    text = edit('kind = "golden_json"\npath = "demo/golden.json"', 'kind = "all"')
    cert = make_certification(load_service_config(write(site, text)))
    assert isinstance(cert, AllRunsCertification)
    assert all(isinstance(p, SourceCertification) for p in cert.parts)
    text = edit(
        'kind = "golden_json"\npath = "demo/golden.json"',
        'kind = "runregistry"\ndataset_class = "C"\nname_like = "/x%"\n'
        'client_id = "app"\nclient_secret_env = "AUTODQM_TEST_UNSET_SECRET"',
    )
    monkeypatch.delenv("AUTODQM_TEST_UNSET_SECRET", raising=False)
    with pytest.raises(ConfigError, match="'AUTODQM_TEST_UNSET_SECRET' is not set"):
        make_certification(load_service_config(write(site, text)))
