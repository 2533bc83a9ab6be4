"""The Ray deployment's settings and arguments, checked at the edge (no Ray cluster needed)."""

import pytest
from pydantic import ValidationError

from mpt_cli.main import main as mpt
from service.runtime.ray_app import replica_settings, split_args
from service.runtime.ray_settings import RaySettings
from service.settings import Settings


def test_fixed_size_or_autoscaling_bounds():
    assert RaySettings(replicas=3).scaling() == {"num_replicas": 3}
    auto = RaySettings(replicas=2, max_replicas=6, target_ongoing_requests=8).scaling()["autoscaling_config"]
    assert auto == {"min_replicas": 2, "initial_replicas": 2, "max_replicas": 6, "target_ongoing_requests": 8}
    assert RaySettings(min_replicas=0, max_replicas=4).scaling()["autoscaling_config"]["min_replicas"] == 0
    with pytest.raises(ValidationError, match="min_replicas=5 exceeds max_replicas=4"):
        RaySettings(min_replicas=5, max_replicas=4)
    with pytest.raises(ValidationError, match="min_replicas=1 needs max_replicas"):
        RaySettings(min_replicas=1)
    assert RaySettings(num_cpus=2.5).threads() == 2 and RaySettings(num_cpus=0.5).threads() == 1
    assert RaySettings(num_gpus=0).gpus() == 0.0


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MPT_RAY_REPLICAS", "4")
    monkeypatch.setenv("MPT_RAY_NUM_GPUS", "1")
    rs = RaySettings()
    assert (rs.replicas, rs.gpus()) == (4, 1.0)


def test_serve_config_args_split_into_server_and_ray_settings():
    server, ray = split_args({"model": "m", "store": "postgresql://x@/db", "replicas": 2, "num-gpus": 1})
    assert server == {"model": "m", "store": "postgresql://x@/db"} and ray == {"replicas": 2, "num_gpus": 1}
    with pytest.raises(ValueError, match="unknown argument 'replica'"):
        split_args({"replica": 2})


def test_every_replica_gets_the_drivers_settings_secrets_included():
    s = Settings(model="m", store="s", admin_token="t0ken", max_batch=8)
    out = replica_settings(s)
    assert out["admin_token"] == "t0ken" and out["max_batch"] == 8
    assert Settings(**out) == s


def test_bad_ray_flags_are_one_line_before_anything_starts(capsys):
    assert mpt(["serve", "--ray", "--replicas", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mpt serve --ray: invalid settings:") and "replicas" in err
    assert mpt(["serve", "--ray", "--max-batch", "0"]) == 2
    assert "max_batch" in capsys.readouterr().err


def test_flags_reach_the_ray_settings():
    from service.runtime.ray_main import parse

    server, rs = parse(["--ray", "--replicas", "3", "--num-cpus", "0.5", "--haproxy", "--store", "s"])
    assert (rs.replicas, rs.num_cpus, rs.haproxy, server.store) == (3, 0.5, True, "s")
    assert parse(["--ray"])[1].haproxy is False
