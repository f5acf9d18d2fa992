"""HTTP answers counted a batch at a time come out as Prometheus' own
observe() would have counted them, one by one."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import Answer, Metrics

answers = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=2e9, allow_nan=False),
        st.sampled_from(["GET", "POST", "HEAD", "PROPFIND"]),
        st.sampled_from(["/healthz", "/api/v1/offices/{office}/availability", "-"]),
        st.sampled_from([200, 404, 429, 500]),
        # Bounds exactly, and times on either side of them.
        st.one_of(
            st.sampled_from([0.0, 0.005, 0.01, 0.025, 0.25, 10.0, 11.0]),
            st.floats(min_value=0, max_value=20, allow_nan=False),
        ),
        st.just("-"),
    ),
    max_size=40,
)


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    # Creation times differ between the two registries.
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def same_counts(batched: Metrics, one_by_one: Metrics) -> None:
    got, wanted = samples(batched), samples(one_by_one)
    assert got.keys() == wanted.keys()
    for key, value in wanted.items():
        if key[0].endswith("_sum"):
            # The batch adds its times up before adding them in.
            assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), key
        else:
            assert got[key] == value, key


@given(st.lists(answers, max_size=4))
def test_a_batch_counts_as_one_observation_per_answer(batches: list[list[Answer]]) -> None:
    batched, one_by_one = Metrics(), Metrics()
    for batch in batches:
        batched.count_http(batch)
        for _, method, route, status, seconds, _ in batch:
            label = method if method in ("GET", "POST", "HEAD") else "other"
            one_by_one.http_requests.labels(label, route, str(status)).inc()
            one_by_one.http_seconds.labels(label, route).observe(seconds)
    same_counts(batched, one_by_one)


def test_an_empty_batch_counts_nothing() -> None:
    metrics = Metrics()
    metrics.count_http([])
    assert not [name for name, _ in samples(metrics) if name.startswith("mawid_http")]
