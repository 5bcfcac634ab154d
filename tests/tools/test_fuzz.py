"""The fuzzed public API, short budget (issue 17, part 3): every driver of ``tools/fuzz_api.py`` runs a fixed
number of derandomized hypothesis examples and fails on the first bug (shrunk); the known bugs whose fixes
belong to files others own are strict xfails below, one each, so they stay visible until fixed.

The long budget runs from the command line: ``python -m tools.fuzz_api --budget-s 600 --out /tmp/fuzz``.
"""

import time

import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnn
from tools import fuzz_api as F

# Examples per driver: about 40 s of the whole file on 2 cores with -n 2. A driver whose valid calls
# compile (fit, fit_many, the estimators) gets fewer; one whose calls mostly fail fast in Python, more.
EXAMPLES = {
    "fit": 12,
    "fit_many": 10,
    "sklearn": 14,
    "make_step": 14,
    "datasets.mnist1d": 6,
    "compare_gradients": 12,
    "check_derivation": 12,
    "plot": 10,
    "Loss (user-made)": 12,
    "Activation (user-made)": 12,
    "fit (early_stopping)": 8,
    "per_example_grad_norms": 15,
}
DEFAULT_EXAMPLES = 25


@pytest.fixture(autouse=True, scope="module")
def _tmp(tmp_path_factory):
    F.set_tmp(str(tmp_path_factory.mktemp("fuzz")))


@pytest.mark.parametrize("driver", sorted(F.ENTRIES))
def test_fuzz(driver):
    tally = F.Tally()

    # too_slow: an example may compile an XLA program (a few hundred ms on 2 cores); each call is bounded
    # by its own time limit instead (a hang is a bug). No deadline for the same reason.
    @settings(
        max_examples=EXAMPLES.get(driver, DEFAULT_EXAMPLES),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.data())
    def one(data):
        case = F.ENTRIES[driver](data)
        out = F.run(case, timeout=60)
        tally.add(case, out)
        assert out.kind != "bug", out.detail

    one()
    assert sum(row["cases"] for row in tally.cases.values()) >= 1


# ---- the judge itself: each verdict on a call whose outcome is known --------------------------------------


def _case(call, verdict=F.INVALID, names=("x",)):
    return F.Case("probe", call, [F.Arg(names[0], None, verdict, "probe")], names=names[1:])


def test_a_named_refusal_from_fnn_is_clean():
    net = fnn.MLP((2, 3))
    out = F.run(_case(lambda: net.apply(net.init(jax.random.key(0)), jnp.ones((4, 3)))))
    assert out.kind == "refused", out.detail


def test_an_error_from_inside_jax_is_a_bug():
    out = F.run(_case(lambda: jnp.ones(3) + jnp.ones(4)))
    assert out.kind == "bug" and "raised inside jax" in out.detail


def test_a_message_that_names_no_argument_is_a_bug():
    case = _case(lambda: None)
    out = F.judge_error(case, _raise_in_fnn(ValueError("something went wrong")))
    assert out.kind == "bug" and "names no argument" in out.detail
    assert F.judge_error(case, _raise_in_fnn(ValueError("`x` is wrong"))).kind == "refused"
    assert F.judge_error(case, _raise_in_fnn(ValueError("x is wrong"))).kind == "refused"


def _raise_in_fnn(e):
    """``e`` with a traceback whose innermost frame is in fnn (raised by fnn.MLP's own check)."""
    try:
        fnn.MLP("x")
    except TypeError as inner:
        return e.with_traceback(inner.__traceback__)
    raise AssertionError("fnn.MLP('x') was accepted")


def test_other_exception_types_are_bugs():
    out = F.run(_case(lambda: {}["x"]))
    assert out.kind == "bug" and "KeyError" in out.detail


def test_accepting_an_invalid_argument_is_a_bug_and_refusing_a_valid_one_too():
    assert F.run(_case(lambda: 1)).kind == "bug"
    assert F.run(_case(lambda: fnn.MLP((2, 0)), verdict=F.VALID, names=("sizes",))).kind == "bug"


def test_a_hang_is_a_bug():
    finished = []

    def spin():  # a hang, bounded so that a time limit that never fires still ends the test (in 10 s, failing)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            pass
        finished.append(True)

    out = F.run(_case(spin), timeout=0.3)
    assert out.kind == "bug" and out.detail.startswith("hang: the call ran past its limit of 0.3 s"), out.detail
    assert not finished  # the time limit stopped the call: it never got past its loop


def test_a_silently_wrong_result_is_a_bug():
    def check(result, case):
        assert result == 2, "one plus one"

    case = F.Case("probe", lambda: 1 + 1.5, [F.Arg("x", 1, F.VALID, "ok")], check=check)
    assert F.run(case).kind == "bug"


# ---- the known bugs, handed over: a strict xfail each (test_known_<id>), the refusal the fix should give ----------


def test_every_known_bug_has_its_xfail():
    here = {name.removeprefix("test_known_").replace("_", "-") for name in globals() if name.startswith("test_known_")}
    assert {k.id.replace("_", "-") for k in F.KNOWN} == here


@pytest.mark.slow
def test_the_long_budget_runs_from_the_command_line(tmp_path):
    """The command line's workers, tally and report, on a few seconds of two drivers."""
    summary = F.main(["--budget-s", "8", "--entries", "shuffle,one_hot", "--out", str(tmp_path)])
    assert summary["cases"] and not summary["crashes"] and not summary["bugs"]
    assert (tmp_path / "summary.json").exists() and (tmp_path / "shuffle.json").exists()
