"""The load benchmark's arithmetic (benchmarks/load): the customers a run's calls go to."""

from __future__ import annotations

import itertools
import pickle
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purse.v1 import terminal_service_pb2 as pb

# benchmarks/ is not an installed package: import it from the repository, as `make` does.
_repository = Path(__file__).resolve().parents[2]
if str(_repository) not in sys.path:
    sys.path.insert(0, str(_repository))

from benchmarks.load import generator  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20_000))
def test_calls_visit_every_customer_once_before_any_twice(count: int) -> None:
    step = generator.spread_step(count)

    assert sorted(call * step % count for call in range(count)) == list(range(count))


def test_consecutive_calls_go_to_customers_far_apart_in_a_large_business() -> None:
    phones = generator.PhoneNumbers("+38067", 1_000_000)
    requests = generator.Requests("identify", generator.Target("x", "k", phones), "r", 0, 1, 1)

    indexes = [
        int(pb.IdentifyCustomerRequest.FromString(requests.message(call)).identifier.phone[6:])
        for call in range(100)
    ]

    assert len(set(indexes)) == 100
    assert min(abs(earlier - later) for earlier, later in itertools.pairwise(indexes)) > 100_000


def test_phone_numbers_are_computed_not_stored() -> None:
    phones = generator.PhoneNumbers("+38067", 1_000_000)

    assert len(phones) == 1_000_000
    assert phones[0] == "+380670000000"
    assert phones[-1] == phones[999_999] == "+380670999999"
    assert list(phones[10:13]) == ["+380670000010", "+380670000011", "+380670000012"]
    assert len(pickle.dumps(phones)) < 200
    with pytest.raises(IndexError):
        phones[1_000_000]


def test_a_request_names_the_same_customer_whether_kept_ready_or_made_again() -> None:
    count = generator.prepared_customers_max + 5_000
    phones = generator.PhoneNumbers("+38067", count)
    requests = generator.Requests("identify", generator.Target("x", "k", phones), "r", 0, 1, 1)
    step = generator.spread_step(count)

    first = [requests.message(call) for call in range(count)]
    again = [requests.message(call) for call in range(count)]

    assert first == again
    named = [pb.IdentifyCustomerRequest.FromString(message).identifier.phone for message in first]
    assert named == [phones[call * step % count] for call in range(count)]
