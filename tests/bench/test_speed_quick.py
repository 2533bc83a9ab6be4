"""bench.speed end to end on a tiny model (--quick), the HTTP phase included (the real server in a
subprocess): engine and PEFT agree, the server answers as the engine does, the JSON has every field;
and the phase runner's time caps and failure records."""

import json

import pytest

pytest.importorskip("peft")


def test_quick_run_writes_checked_figures(tmp_path, capsys):
    from bench.speed.run import main

    argv = ["--device", "cpu", "--quick", "--http", "--repeats", "1", "--latency-repeats", "1", "--http-seconds", "1",
            "--out", str(tmp_path)]  # fmt: skip
    result = main(argv)
    saved = json.loads((tmp_path / "speed-cpu-quick.json").read_text())
    assert saved["checks"]["generate"]["identical"] and saved["checks"]["score"]["identical_choices"]
    assert saved["checks"]["score"]["max_abs_diff"] < 1e-4
    assert saved["checks"]["http"]["output_equal"] and saved["checks"]["http"]["max_abs_diff"] < 1e-4
    assert set(saved["ratios"]) == {"generate_b32", "score_b32", "latency_b1", "tenancy_1000", "http_vs_engine"}
    assert all(v > 0 for v in saved["ratios"].values())
    assert all(p["status"] == "ok" for p in saved["phases"].values()) and "http" in saved["phases"]
    http = saved["figures"]["http"]
    assert http["requests"] > 0 and http["errors"] == 0 and http["concurrency"] == saved["shape"]["batch"]
    assert (tmp_path / "speed-cpu-quick-server.log").exists()
    assert saved["versions"]["peft"] and saved["shape"]["dtype"] == "float32" and saved["command"]
    assert saved["warm_up"]["verify"]["ok"] and saved["fast_path_active"]
    assert saved["settings"]["MPT_FAST_PATH"] == "true" and saved["engine_driven_by"].startswith(
        "service.inference.engine"
    )
    assert result["figures"]["tenancy_1000"]["distinct_tasks_in_batch"] == saved["shape"]["batch"]
    assert "| figure | engine | PEFT |" in capsys.readouterr().out


def test_a_failing_phase_is_recorded_and_the_next_runs(tmp_path):
    from bench.speed.run import Run, parse

    args = parse(["--device", "cpu", "--quick", "--out", str(tmp_path)])
    run = Run(args, {"shape": {"batch": 8}, "figures": {}}, deadline=1000.0, cuda=False)

    def boom():
        raise RuntimeError("boom")

    ran = []
    run.phase("first", boom)
    run.phase("second", lambda: ran.append(1))
    run.phase("third", lambda: ran.append(2), need_s=10_000)  # does not fit in what is left
    assert run.phases["first"]["status"] == "failed: RuntimeError: boom" and run.phases["second"]["status"] == "ok"
    assert run.phases["third"]["status"].startswith("skipped") and ran == [1]
    assert json.loads((tmp_path / "speed-cpu-quick.json").read_text())["phases"] == run.phases
