"""The local stack's own pieces, checked against what AWS does: Scheduler's cron/rate expressions, the payload 2.0
event and response mapping of an HTTP API, and the SQS poller's partial-batch rule. No stack needed."""

import base64
import json
from datetime import UTC, datetime

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from local.stack.gateway import Router, build_event, to_response
from local.stack.scheduler import LocalSchedule, ScheduleExpression, Scheduler
from local.stack.sqs_poller import processed_records, sqs_event
from local.stack.template import Template


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected"),
    [
        # The template's nightly: 02:00 London time, GMT in winter and BST in summer.
        ("cron(0 2 * * ? *)", "Europe/London", "2026-11-25T10:00:00+00:00", "2026-11-26T02:00:00+00:00"),
        ("cron(0 2 * * ? *)", "Europe/London", "2026-07-01T00:00:00+00:00", "2026-07-01T01:00:00+00:00"),
        ("cron(0/15 9-17 ? * MON-FRI *)", "UTC", "2026-11-27T17:50:00+00:00", "2026-11-30T09:00:00+00:00"),
        ("cron(0 12 L * ? *)", "UTC", "2026-02-01T00:00:00+00:00", "2026-02-28T12:00:00+00:00"),
        ("cron(0 10 ? * 6L *)", "UTC", "2026-11-01T00:00:00+00:00", "2026-11-27T10:00:00+00:00"),  # last Friday
        ("cron(0 8 ? * 2#1 *)", "UTC", "2026-11-03T00:00:00+00:00", "2026-12-07T08:00:00+00:00"),  # first Monday
        ("cron(30 6 1 JAN,JUL ? 2027)", "UTC", "2026-11-25T00:00:00+00:00", "2027-01-01T06:30:00+00:00"),
        ("rate(5 minutes)", "UTC", "2026-11-25T10:00:00+00:00", "2026-11-25T10:05:00+00:00"),
        ("rate(1 day)", "UTC", "2026-11-25T10:00:00+00:00", "2026-11-26T10:00:00+00:00"),
        ("at(2026-12-01T09:00:00)", "Europe/London", "2026-11-25T10:00:00+00:00", "2026-12-01T09:00:00+00:00"),
    ],
)
def test_schedule_expressions_fire_when_eventbridge_scheduler_would(
    expression: str, timezone: str, after: str, expected: str
) -> None:
    fired = ScheduleExpression(expression, timezone).next_after(datetime.fromisoformat(after))

    assert fired is not None
    assert fired.astimezone(UTC) == datetime.fromisoformat(expected)


@pytest.mark.parametrize("expression", ["cron(0 2 * * *)", "cron(0 2 * * 1 *)", "cron(61 2 * * ? *)", "daily"])
def test_an_expression_scheduler_would_reject_is_rejected(expression: str) -> None:
    with pytest.raises(ValueError):
        ScheduleExpression(expression).next_after(datetime.now(UTC))


def test_a_targets_input_gets_the_time_scheduler_fires_for_written_in() -> None:
    # The template's nightly input, as its schedule gives it to the target
    (nightly,) = Template().schedules()
    invoked: list[dict] = []
    scheduler = Scheduler(
        [LocalSchedule("nightly", nightly.function, ScheduleExpression(nightly.expression), nightly.input)],
        lambda _function, payload: invoked.append(payload),
        now=lambda: datetime(2026, 12, 8, 2, 0, 5, tzinfo=UTC),
    )
    scheduler.fire("nightly", datetime(2026, 12, 8, 2, 0, tzinfo=UTC))
    scheduler.fire("nightly")  # on demand: the time it fires
    assert invoked == [
        {"trigger": "nightly", "scheduledTime": "2026-12-08T02:00:00Z"},
        {"trigger": "nightly", "scheduledTime": "2026-12-08T02:00:05Z"},
    ]


def test_routes_match_as_an_http_api_does() -> None:
    router = Router(Template().routes())

    link = router.match("POST", "/clients/link")
    relink = router.match("POST", "/clients/3f1c7d0e-4a55-4b5e-9a0c-2f1e0b7d9c31/link")

    assert link is not None and link[0].route_key == "POST /clients/link" and link[1] == {}
    assert relink is not None and relink[0].route_key == "POST /clients/{clientId}/link"
    assert relink[1] == {"clientId": "3f1c7d0e-4a55-4b5e-9a0c-2f1e0b7d9c31"}
    assert router.match("PATCH", "/clients") is None
    assert router.match("GET", "/clients/a/b") is None


def test_a_request_becomes_a_payload_2_0_event() -> None:
    builder = EnvironBuilder(
        method="POST",
        path="/clients/abc/sync",
        query_string="mode=full&tag=a&tag=b",
        headers={"Content-Type": "application/json", "Cookie": "s=1; t=2", "User-Agent": "ua/1", "X-Custom": "v"},
        data=b'{"mode": "full"}',
        base_url="http://127.0.0.1:3001",
    )
    request = Request(builder.get_environ())
    headers = {k.lower(): v for k, v in request.headers.items()}

    event = build_event(
        request, "POST /clients/{clientId}/sync", {"clientId": "abc"}, headers, {"practice_id": "p", "exp": 5}
    )

    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /clients/{clientId}/sync"
    assert event["rawPath"] == "/clients/abc/sync"
    assert event["rawQueryString"] == "mode=full&tag=a&tag=b"
    assert event["queryStringParameters"] == {"mode": "full", "tag": "a,b"}
    assert event["pathParameters"] == {"clientId": "abc"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-custom"] == "v"
    assert event["body"] == '{"mode": "full"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/clients/abc/sync",
        "protocol": "HTTP/1.1",
        "sourceIp": context["http"]["sourceIp"],
        "userAgent": "ua/1",
    }
    assert context["stage"] == "$default"
    assert context["routeKey"] == event["routeKey"]
    assert {"accountId", "apiId", "domainName", "requestId", "time", "timeEpoch"} <= context.keys()
    assert context["authorizer"] == {"jwt": {"claims": {"practice_id": "p", "exp": "5"}, "scopes": None}}


def test_a_binary_body_is_base64_encoded_and_a_bodyless_request_has_no_body() -> None:
    binary = Request(EnvironBuilder(method="POST", path="/x", data=b"\x00\xff", content_type="image/png").get_environ())
    empty = Request(EnvironBuilder(method="GET", path="/x").get_environ())

    binary_event = build_event(binary, "POST /x", {}, {"content-type": "image/png"}, None)
    empty_event = build_event(empty, "GET /x", {}, {}, None)

    assert binary_event["isBase64Encoded"] is True
    assert base64.b64decode(binary_event["body"]) == b"\x00\xff"
    assert "body" not in empty_event and "queryStringParameters" not in empty_event
    assert "authorizer" not in empty_event["requestContext"]


def test_the_functions_response_is_mapped_back() -> None:
    structured = to_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-A": "1"},
            "cookies": ["a=1; HttpOnly", "b=2"],
            "body": base64.b64encode(b'{"ok": true}').decode(),
            "isBase64Encoded": True,
        }
    )
    inferred = to_response({"ok": True})

    assert structured.status_code == 201
    assert structured.get_data() == b'{"ok": true}'
    assert structured.headers["X-A"] == "1"
    assert structured.headers.getlist("Set-Cookie") == ["a=1; HttpOnly", "b=2"]
    assert inferred.status_code == 200
    assert inferred.content_type == "application/json"
    assert json.loads(inferred.get_data()) == {"ok": True}


def _records() -> list[dict[str, object]]:
    messages = [
        {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "{}", "MD5OfBody": "x", "Attributes": {}}
        for i in range(3)
    ]
    records: list[dict[str, object]] = sqs_event(messages, "arn:aws:sqs:eu-west-1:123456789012:q", "eu-west-1")[
        "Records"
    ]
    return records


@pytest.mark.parametrize(
    ("response", "deleted"),
    [
        (None, ["m0", "m1", "m2"]),
        ({"batchItemFailures": []}, ["m0", "m1", "m2"]),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, ["m0", "m2"]),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, []),  # a failure Lambda cannot match: whole batch
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, []),
    ],
)
def test_only_processed_records_are_deleted(response: object, deleted: list[str]) -> None:
    records = _records()

    done = processed_records(records, response, report_batch_item_failures=True)

    assert [r["messageId"] for r in done] == deleted


def test_an_sqs_record_has_lambdas_shape() -> None:
    (record, *_) = _records()

    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:eu-west-1:123456789012:q"
    assert record["awsRegion"] == "eu-west-1"
    assert {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody"} <= record.keys()


def test_the_front_doors_access_log_never_carries_a_query_string(caplog: pytest.LogCaptureFixture) -> None:
    """Regression: werkzeug's default access line logged the callback's query, Xero's authorization code in it."""
    import requests
    from werkzeug.wrappers import Response

    from local.stack.gateway import GatewayServer

    server = GatewayServer(lambda environ, start: Response("", status=302)(environ, start))
    server.start()
    try:
        with caplog.at_level("INFO", logger="local.stack.gateway"):
            requests.get(f"{server.url}/xero/callback?code=the-authorization-code&state=s", timeout=10)
    finally:
        server.stop()

    (line,) = [r.getMessage() for r in caplog.records if "/xero/callback" in r.getMessage()]
    assert json.loads(line) == {"sourceIp": "127.0.0.1", "request": "GET /xero/callback", "status": "302"}
    assert "the-authorization-code" not in line and "state=" not in line
