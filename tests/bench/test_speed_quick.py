"""bench.speed end to end on a tiny model (--quick): engine and PEFT agree, the JSON has every field."""

import json

import pytest

pytest.importorskip("peft")


def test_quick_run_writes_checked_figures(tmp_path, capsys):
    from bench.speed import main

    result = main(["--device", "cpu", "--quick", "--repeats", "1", "--latency-repeats", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "speed-cpu-quick.json").read_text())
    assert saved["checks"]["generate"]["identical"] and saved["checks"]["score"]["identical_choices"]
    assert saved["checks"]["score"]["max_abs_diff"] < 1e-4
    assert set(saved["ratios"]) == {"generate_b32", "score_b32", "latency_b1", "tenancy_1000"}
    assert all(v > 0 for v in saved["ratios"].values())
    assert saved["versions"]["peft"] and saved["shape"]["dtype"] == "float32" and saved["command"]
    assert saved["warm_up"]["verify"]["ok"]
    assert result["figures"]["tenancy_1000"]["distinct_tasks_in_batch"] == saved["shape"]["batch"]
    assert "| figure | engine | PEFT |" in capsys.readouterr().out
