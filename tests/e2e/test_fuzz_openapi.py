"""Schemathesis against the API's own OpenAPI document, as the local stack serves it (/_local/openapi.json): every
operation, with valid and invalid inputs, under a valid JWT and several invalid ones. Every answer must be within
the document (status, content type, body schema) and none may be a 5xx.

Bounded and seeded for CI: FUZZ_MAX_EXAMPLES examples per operation (default 15), Hypothesis derandomized (the same
inputs every run; FUZZ_SEED picks another set), no deadline (the machine is shared), no example database.
"""

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS

from local.stack.jwt_auth import SigningKey, TokenIssuer
from local.stack.offline_stack import OfflineStack
from tests.e2e.helpers import Api

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "15"))
SEED = int(os.environ.get("FUZZ_SEED", "9"))
# Stateful checks (resources created by one call and used by the next) need links this document does not declare.
STATELESS = ("not_a_server_error", "status_code_conformance", "content_type_conformance")
STATELESS += ("response_schema_conformance", "response_headers_conformance", "negative_data_rejection")


def _tokens(stack: OfflineStack, practice: str) -> dict[str, str | None]:
    assert stack.issuer is not None
    stranger = TokenIssuer(SigningKey.generate(), stack.issuer.issuer, stack.issuer.audience)
    return {
        "valid": stack.token(practice),
        "none": None,
        "expired": stack.token(practice, exp=int(time.time()) - 60, iat=int(time.time()) - 120),
        "another key": stranger.mint(practice),
        "not a JWT": "not-a-jwt",
        "no practice claim": stack.token(None),
    }


def _checks() -> list[Callable[..., Any]]:
    return list(CHECKS.get_by_names(list(STATELESS)))


@pytest.mark.parametrize("token", ["valid", "none", "expired", "another key", "not a JWT", "no practice claim"])
def test_every_operation_answers_within_its_schema_and_never_with_a_5xx(
    stack: OfflineStack, api: Api, practice: str, seed_client: Any, token: str
) -> None:
    # Given the API's own document, and for each operation a client of the practice that fuzzed ids sometimes name
    # (so its real answers are checked too, not only 404s)
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/_local/openapi.json")
    bearer = _tokens(stack, practice)[token]
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    failures: list[str] = []
    answers: Counter[str] = Counter()

    # When every operation is called with generated valid and invalid requests
    for result in schema.get_all_operations():
        operation = result.ok()
        cases = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )
        if "clientId" in str(operation.path):
            own = seed_client(practice, f"Sierra {operation.method} Ltd").client_id
            cases = st.one_of(cases, cases.map(lambda case, own=own: _naming(case, own)))

        @seed(SEED)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def call(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                base_url=stack.api_url, headers=headers, checks=_checks(), allow_redirects=False
            )
            answers[
                f"{case.method} {case.path} {case.meta.generation.mode.value if case.meta else ''}"
                f" {response.status_code}"
            ] += 1

        try:
            call()
        except Exception as failure:
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}"[:3000])

    # Then nothing broke the document or the server
    print(f"{sum(answers.values())} calls:", dict(sorted(answers.items())))
    assert not failures, "\n\n".join(failures)


def _naming(case: schemathesis.Case, client_id: str) -> schemathesis.Case:
    if case.path_parameters and "clientId" in case.path_parameters:
        case.path_parameters["clientId"] = client_id
    return case
