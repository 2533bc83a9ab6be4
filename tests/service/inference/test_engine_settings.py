"""The engine's MPT_FAST_* settings: defaults, parsing from the environment, the caps at the request
limits, refusals that name the bad value, and their mapping onto the fast path's options."""

import pytest
from pydantic import ValidationError

from service.__main__ import main
from service.http.errors import describe_validation_errors
from service.inference.engine import fast_options
from service.settings import Settings


def test_defaults_serve_the_fast_path_and_warm_up_the_common_shapes():
    s = Settings()
    assert s.fast_path and s.fast_compile == "auto" and s.fast_cuda_graphs
    assert s.fast_warmup_batches == [1, 2, 4, 8, 16, 32] and s.fast_warmup_lengths == [32, 64, 128]
    assert s.fast_warmup_steps == [s.default_new_tokens] and s.fast_warmup_candidates == [(2, 2)]


def test_lists_from_the_environment_as_json_or_comma_separated(monkeypatch):
    monkeypatch.setenv("MPT_MAX_BATCH", "256")
    monkeypatch.setenv("MPT_FAST_WARMUP_BATCHES", "256, 1,64")
    monkeypatch.setenv("MPT_FAST_WARMUP_LENGTHS", "[128]")
    monkeypatch.setenv("MPT_FAST_WARMUP_STEPS", "4")
    monkeypatch.setenv("MPT_FAST_WARMUP_CANDIDATES", "2x1,2X2")
    s = Settings()
    assert s.fast_warmup_batches == [1, 64, 256] and s.fast_warmup_lengths == [128] and s.fast_warmup_steps == [4]
    assert s.fast_warmup_candidates == [(2, 1), (2, 2)]
    monkeypatch.setenv("MPT_FAST_WARMUP_CANDIDATES", "[[3, 4]]")
    assert Settings().fast_warmup_candidates == [(3, 4)]


def test_warm_up_shapes_are_capped_at_the_request_limits():
    s = Settings(max_batch=8, max_input_tokens=100, max_new_tokens=10, max_candidates=3,
                 fast_warmup_batches=[1, 4, 16, 64], fast_warmup_lengths=[64, 128, 512], fast_warmup_steps=[4, 32],
                 fast_warmup_candidates=[(2, 2), (8, 3)])  # fmt: skip
    assert s.fast_warmup_batches == [1, 4, 8] and s.fast_warmup_lengths == [64, 100] and s.fast_warmup_steps == [4, 10]
    assert s.fast_warmup_candidates == [(2, 2), (3, 3)]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("fast_attention", "flash", "fast_attention='flash'"),
        ("fast_cross", "both", "fast_cross='both'"),
        ("fast_compile", "fastest", "fast_compile='fastest'"),
        ("fast_warmup_batches", "1,0,4", "0 is not a positive count"),
        ("fast_warmup_lengths", "[32, -1]", "-1 is not a positive count"),
        ("fast_warmup_lengths", "[32,", "'[32,' is not a JSON list"),
        ("fast_warmup_steps", "four", "fast_warmup_steps.0='four'"),
        ("fast_warmup_candidates", "2x0", "(2, 0) needs candidates >= 1 and tokens >= 1"),
        ("fast_length_step", "0", "fast_length_step='0'"),
        ("fast_compile_budget_s", "-5", "fast_compile_budget_s='-5'"),
    ],
)
def test_bad_values_are_refused_naming_them(monkeypatch, field, value, named):
    monkeypatch.setenv(f"MPT_{field.upper()}", value)
    with pytest.raises(ValidationError) as e:
        Settings()
    assert named in describe_validation_errors(e.value.errors())


def test_the_server_refuses_to_start_with_a_bad_fast_setting(monkeypatch, capsys):
    monkeypatch.setenv("MPT_FAST_COMPILE", "turbo")
    assert main([]) == 2
    assert "fast_compile='turbo'" in capsys.readouterr().err


def test_settings_map_onto_the_fast_paths_options():
    s = Settings(fast_attention="sdpa", fast_cross="absorbed", fast_compile="max-autotune", fast_cuda_graphs=False,
                 fast_length_step=16, fast_compile_budget_s=42, fast_compile_min_batch=64)  # fmt: skip
    o = fast_options(s)
    assert (o.attention, o.cross, o.compile, o.cuda_graphs) == ("sdpa", "absorbed", "max-autotune", False)
    assert (o.length_step, o.max_compile_s, o.compile_min_batch) == (16, 42, 64)
