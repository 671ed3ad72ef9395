"""A tiny run of every experiment, so the harness cannot rot: it must produce a complete report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auction_bench.chaos_kills import TARGETS
from auction_bench.exp_chaos import SECTION as CHAOS_SECTION
from auction_bench.experiments import EXPERIMENTS, run_all
from devstack.stack import default_edge_workers
from tests.conftest import scaled

# The chaos experiment runs a whole `devstack up` and nine kills even at tiny scale, and durability three
# Redis setups: each has a test of its own, so the all-experiments test stays within its timeout.
ON_THEIR_OWN = {"chaos", "durability"}


async def test_tiny_experiments_write_a_report_with_plots_and_verdicts(tmp_path: Path) -> None:
    """Every experiment runs at tiny scale; the report has its sections, plots, raw results, machine."""
    report = await run_all([name for name in EXPERIMENTS if name not in ON_THEIR_OWN], "tiny", tmp_path)
    text = report.read_text()
    folder = report.parent
    assert "Experiment 1" in text
    assert "Experiment 2" in text
    assert "every event once, in order" in text
    assert "Experiment 3a" in text
    assert "nothing missed" in text
    assert "Experiment 3: horizontal scale" in text
    assert "Experiments 3b and 3c" in text
    assert "Experiment 4: the last seconds" in text
    assert "WRONG" not in text
    assert "correct" in text
    assert (folder / "contention_throughput.png").stat().st_size > 1000
    results = json.loads((folder / "results.json").read_text())
    runs = results["contention"]["runs"]
    assert {r["target"] for r in runs} == {"bare", "lua", "watch"}
    assert all(r["requests"] > 0 for r in runs)
    assert all(set(r["cpu_us_per_bid"]) >= {"load", "redis"} for r in runs)
    assert all(r["cpu_us_per_bid"]["edge"] > 0 for r in runs if r["target"] != "bare")
    stack = results["contention"]["stack"]
    components = {"edge", "bidder", "relay", "archiver", "fanout", "redis", "nats", "postgres"}
    assert set(stack["idle_cores"]) == components
    assert all(r["verdict"] == "correct" and r["requests"] > 0 for r in stack["runs"])
    for run in stack["runs"]:
        assert set(run["cpu_us_per_bid"]) == components | {"load"}
        assert run["cpu_us_per_bid"]["edge"] > 0
        assert run["cpu_us_per_bid"]["bidder"] > 0
    assert "as `make up` runs it" in text
    assert results["contention"]["locust"]["requests"] > 0
    grpc_runs = results["contention"]["grpc"]
    assert {r["target"] for r in grpc_runs} == {"grpc-unary", "grpc-batched"}
    assert all(r["verdict"] == "correct" and r["requests"] > 0 for r in grpc_runs)
    assert all(r["connected"] == r["viewers"] for r in results["fanout"]["runs"])
    assert (folder / "fanout_latency.png").stat().st_size > 1000
    last = results["last_seconds"]
    hard, soft = last["wars"]
    assert (hard["soft_close"], soft["soft_close"]) == (False, True)
    assert hard["extensions"] == 0
    assert hard["accepted"] > 0
    assert soft["accepted"] > 0
    assert last["closing"]["closed"] == last["closing"]["items"]
    outages = results["outages"]
    assert outages["exact"] is True
    assert outages["missing"] == outages["extra"] == 0
    assert [o["kind"] for o in outages["outages"]] == [
        "postgres-kill", "postgres-freeze", "nats-kill", "nats-freeze",
    ]  # fmt: skip
    for outage in outages["outages"]:
        assert outage["caught_up"], outage["kind"]
        assert all(phase["bids"] > 0 and phase["bids_per_s"] > 0 for phase in outage["phases"]), outage
        assert outage["timeline"]
    assert "**Verdict.**" in text
    assert "nothing lost, nothing twice" in text
    assert (folder / "outage_timeline.png").stat().st_size > 1000
    mixed = results["horizontal_scale"]["mixed"]
    assert [m["instances"] for m in mixed] == [1, 2]
    for run in mixed:
        assert run["verdict"] == "correct"
        assert run["viewers_ok"], run
        assert run["broadcasts"] > 0
        assert run["requests"] > 0
    assert "cannot show scaling" in text
    assert (folder / "scale_mixed.png").stat().st_size > 1000
    assert results["failover"]["missed_events"] == 0
    assert results["failover"]["reconnected"] > 0
    assert json.loads((folder / "machine.json").read_text())["cores"]


async def test_tiny_durability_experiment_measures_every_option_in_one_run(tmp_path: Path) -> None:
    """Experiment 3e alone at tiny scale: everysec, always and WAIT 1 each ran the war correctly, the
    replica's WAITs were acknowledged and it ended equal to the primary; the section says what each
    option survives, with a plot."""
    report = await run_all(["durability"], "tiny", tmp_path)
    text = report.read_text()
    results = json.loads((report.parent / "results.json").read_text())["durability"]
    runs = {r["config"]: r for r in results["runs"]}
    assert set(runs) == {"everysec", "always", "wait1"}
    for run in runs.values():
        assert run["figures"]["requests"] > 0, run
        assert run["figures"]["verdict"] == "correct", run
    assert (runs["everysec"]["fsync"], runs["always"]["fsync"]) == ("everysec", "always")
    assert runs["wait1"]["replicas"] == 1
    assert runs["wait1"]["waits"].get("acknowledged", 0) > 0
    assert runs["wait1"]["replica_equal"] is True
    assert runs["everysec"]["waits"] == {}
    assert results["filesystem"]
    assert "Experiment 3e: what Redis durability costs" in text
    assert "a machine crash may lose up to about 1 s" in text
    assert "Every war is correct with every option." in text
    assert (report.parent / "durability_throughput.png").stat().st_size > 1000


@pytest.mark.timeout(scaled(400))
async def test_tiny_chaos_experiment_writes_its_table_with_nothing_lost(tmp_path: Path) -> None:
    """Experiment 3d at tiny scale: one row per kill, each with its restart, lost 0 and duplicated 0."""
    report = await run_all(["chaos"], "tiny", tmp_path)
    text = report.read_text()
    assert CHAOS_SECTION in text
    assert "| component | unavailable s | back s | archived s |" in text
    assert "Lost 0 and duplicated 0 for every component" in text
    assert "WRONG" not in text
    chaos = json.loads((report.parent / "results.json").read_text())["chaos"]
    assert chaos["exact"] is True
    killed = [target.component for target in TARGETS if default_edge_workers() > 1 or not target.worker]
    assert [row["component"] for row in chaos["kills"]] == killed
    assert {"edge main", "bidder", "redis", "fanout", "relay", "nats", "archiver", "postgres"} <= set(killed)
    for row in chaos["kills"]:
        assert (row["lost"], row["duplicated"]) == (0, 0), row
        assert row["restarts"] >= 1, row
        assert row["unavailable_s"] > 0, row
