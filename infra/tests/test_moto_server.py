"""The emulator's speed patches (infra/moto_server.py) keep what the project relies on.

Each scenario runs against the patched server and against `--plain` (stock moto plus the DynamoDB
correctness patch) and compares what clients see. Run with `make test`, or
`.venv/bin/python -m pytest infra/tests`.
"""

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "infra" / "moto_server.py"
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    def __init__(self, *flags, log):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), *flags, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)
                return
            except OSError:
                assert self.proc.poll() is None, log.read_text()
                time.sleep(0.05)
        raise RuntimeError(f"moto did not start: {log.read_text()}")

    def client(self, service):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    emulator = Emulator(log=tmp_path_factory.mktemp("fast") / "moto.log")
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    emulator = Emulator("--plain", log=tmp_path_factory.mktemp("plain") / "moto.log")
    yield emulator
    emulator.stop()


def both(fast, plain, scenario):
    """Runs `scenario(emulator)` on both servers; what the patched one shows must equal plain's."""
    fast.reset()
    plain.reset()
    got, expected = scenario(fast), scenario(plain)
    assert got == expected
    return got


# EventBridge ---------------------------------------------------------------------------------


def deliveries(emu, transformer=None):
    events, sqs = emu.client("events"), emu.client("sqs")
    events.create_event_bus(Name="bus")
    queue = sqs.create_queue(QueueName=f"q{len(transformer or {})}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"rule{len(transformer or {})}"
    events.put_rule(Name=rule, EventBusName="bus", EventPattern=json.dumps({"detail-type": ["StockReceived"]}))
    target = {"Id": "t", "Arn": arn}
    if transformer:
        target["InputTransformer"] = transformer
    events.put_targets(Rule=rule, EventBusName="bus", Targets=[target])
    detail = {"event_id": "e-1", "sku": "TEE-1", "quantity": 3, "tags": ["a", "b"], "nested": {"x": None}}
    entries = [
        {"EventBusName": "bus", "Source": "erp.test", "DetailType": dt, "Detail": json.dumps(detail)}
        for dt in ["StockReceived", "StockCounted", "StockReceived"]
    ]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
    bodies = []
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
    for body in bodies:
        if isinstance(body, dict):
            # Different per run: make them comparable, keeping their shape.
            assert len(body.pop("id", "x" * 36)) == 36
            time.strptime(body.pop("time", "2000-01-01T00:00:00Z"), "%Y-%m-%dT%H:%M:%SZ")
    return bodies


def partner_deliveries(emu):
    """Events a partner puts on its partner event source, as the associated partner bus's rule
    delivers them; none reach the default bus."""
    events, sqs = emu.client("events"), emu.client("sqs")
    account = emu.client("sts").get_caller_identity()["Account"]
    name = "aws.partner/shopify.com/1830279/stockguard"
    events.create_partner_event_source(Name=name, Account=account)
    events.create_event_bus(Name=name, EventSourceName=name)
    bodies = {}
    for bus in [name, "default"]:
        queue = sqs.create_queue(QueueName=f"partner-{len(bodies)}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = json.dumps({"detail-type": ["shopifyWebhook"]})
        events.put_rule(Name="orders", EventBusName=bus, EventPattern=pattern)
        assert events.describe_rule(Name="orders", EventBusName=bus)["EventPattern"] == pattern
        events.put_targets(Rule="orders", EventBusName=bus, Targets=[{"Id": "t", "Arn": arn}])
        bodies[bus] = queue
    detail = {"payload": {"id": 1}, "metadata": {"X-Shopify-Topic": "orders/create"}}
    events.put_partner_events(
        Entries=[{"Source": name, "DetailType": "shopifyWebhook", "Detail": json.dumps(detail)}]
    )
    got = {}
    for bus, queue in bodies.items():
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        got[bus] = [json.loads(m["Body"]) for m in messages]
    assert [(e["source"], e["detail"]) for e in got[name]] == [(name, detail)]
    assert got["default"] == []


def test_partner_buses_take_rules_and_their_sources_events(fast, plain):
    for emu in [fast, plain]:
        emu.reset()
        partner_deliveries(emu)


def test_a_target_without_transformer_gets_the_standard_event(fast, plain):
    bodies = both(fast, plain, deliveries)
    assert len(bodies) == 2, "only matching events are delivered, each once"
    assert bodies[0]["detail-type"] == "StockReceived" and bodies[0]["detail"]["quantity"] == 3


def test_an_input_transformer_is_still_applied(fast, plain):
    transformer = {
        "InputPathsMap": {"sku": "$.detail.sku", "qty": "$.detail.quantity", "type": "$.detail-type"},
        "InputTemplate": '{"sku": "<sku>", "qty": <qty>, "type": "<type>", "fixed": "x"}',
    }
    bodies = both(fast, plain, lambda emu: deliveries(emu, transformer))
    assert bodies == [{"sku": "TEE-1", "qty": 3, "type": "StockReceived", "fixed": "x"}] * 2


PATTERNS = {
    "inbound": {"source": [{"anything-but": {"prefix": "stockguard."}}], "detail-type": ["StockReceived"]},
    "inbound-two": {"source": [{"anything-but": {"prefix": "stockguard."}}], "detail-type": ["StockCounted", "OrderPlaced"]},
    "sync-a": {"source": ["stockguard.core"], "detail-type": ["InventoryPositionChanged"]},
    "sync-b": {"source": ["stockguard.core"], "detail-type": ["InventoryPositionChanged"]},
    "nested": {"detail": {"sku": [{"prefix": "TEE"}], "qty": [3, 4], "gone": [{"exists": False}]}},
    "numeric": {"detail": {"qty": [{"numeric": [">", 3]}]}},
    "either": {"$or": [{"detail": {"tags": ["b"]}}, {"source": [{"anything-but": ["erp.test", "x"]}]}]},
    "resources": {"resources": [{"prefix": "arn:r"}], "detail": {"nested": {"x": [None]}}},
    "all": {"account": [{"exists": True}], "version": ["0"]},
}


def routed(emu):
    """Several rules on one bus, each with its own queue: which events reach which queue."""
    events, sqs = emu.client("events"), emu.client("sqs")
    events.create_event_bus(Name="bus")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queues = {}
    for name, pattern in PATTERNS.items():
        queues[name] = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queues[name], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName="bus", EventPattern=json.dumps(pattern))
        target = {"Id": "queue", "Arn": arn, "DeadLetterConfig": {"Arn": dlq_arn}, "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}}
        if name == "sync-b":
            target["InputTransformer"] = {"InputPathsMap": {"sku": "$.detail.sku"}, "InputTemplate": '{"sku": "<sku>"}'}
        events.put_targets(Rule=name, EventBusName="bus", Targets=[target])
    events.put_rule(Name="inbound", EventBusName="bus", EventPattern=json.dumps({**PATTERNS["inbound"], "detail-type": ["StockAdjusted"]}))
    out = []
    sent = [
        ("erp.test", "StockReceived", {"sku": "TEE-1", "qty": 3, "tags": ["a", "b"]}, []),
        ("erp.test", "StockAdjusted", {"sku": "TEE-1", "qty": 4, "gone": 1}, ["arn:r:1"]),
        ("stockguard.core", "StockCounted", {"sku": "MUG-1", "qty": 5}, []),
        ("other", "OrderPlaced", {"sku": "TEE-2", "qty": 4.0, "nested": {"x": None}}, ["arn:r:2", "arn:x"]),
        ("stockguard.core", "InventoryPositionChanged", {"sku": "TEE-3", "qty": [1, 3], "nested": {}}, ["x"]),
        ("stockguard.corex", "InventoryPositionChanged", {"sku": 7, "qty": True, "tags": "b"}, []),
        ("x", "StockCounted", {"sku": ["TEE-4", "MUG"], "qty": "3"}, []),
    ]
    for source, detail_type, detail, resources in sent:
        entry = {"EventBusName": "bus", "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "Resources": resources}
        out.append(events.put_events(Entries=[entry, {**entry, "Source": ""}, {**entry, "Detail": "{nope"}])["FailedEntryCount"])
    batch = [{"EventBusName": "bus", "Source": f"s{i}", "DetailType": "OrderPlaced", "Detail": json.dumps({"qty": i})} for i in range(10)]
    out.append(events.put_events(Entries=batch)["FailedEntryCount"])
    for name, url in [*queues.items(), ("dlq", dlq)]:
        bodies = []
        for _ in range(8):
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
        for body in bodies:
            if "id" in body:
                assert len(body.pop("id")) == 36
                time.strptime(body.pop("time"), "%Y-%m-%dT%H:%M:%SZ")
        out.append((name, sorted(json.dumps(b, sort_keys=True) for b in bodies)))
    return out


def test_rules_route_events_as_before(fast, plain):
    out = dict((o[0], o[1]) for o in both(fast, plain, routed) if isinstance(o, tuple))
    assert len(out["inbound"]) == 1 and '"StockAdjusted"' in out["inbound"][0], "the replaced pattern applies"
    assert len(out["sync-a"]) == len(out["sync-b"]) == 1 and out["sync-b"] == ['{"sku": "TEE-3"}']
    assert len(out["all"]) == 7 + 10 and out["dlq"] == []
    assert len(out["numeric"]) > 1 and len(out["either"]) > 1 and len(out["nested"]) > 1 and out["resources"]


def test_compiled_patterns_answer_as_moto(monkeypatch):
    """In-process, many patterns against many events: the compiled test equals moto's walk."""
    import itertools
    import random

    sys.path.insert(0, str(SERVER.parent))
    import moto_server
    from moto.events.models import EventPattern

    values = ["a", "ab", "stockguard.core", "", 0, 1, 1.0, 3, True, False, None, [], {}, ["a", "x"], [["ab"]], [1, "b"], {"k": "a"}]
    filters = ["a", "ab", 1, 3, True, None, {"prefix": "a"}, {"prefix": "stockguard."}, {"exists": True}, {"exists": False},
               {"anything-but": "a"}, {"anything-but": ["a", 1]}, {"anything-but": {"prefix": "a"}}, {"anything-but": 3},
               {"anything-but": True}, {"numeric": [">", 0]}, {"suffix": "b"}, {"equals-ignore-case": "A"}, 1.0]
    rng = random.Random(7)
    patterns = []
    for _ in range(400):
        pick = lambda: rng.sample(filters, rng.randint(1, 3))
        pattern = {"source": pick(), "detail": {"k": pick()}}
        if rng.random() < 0.3:
            pattern["$or"] = [{"detail-type": pick()}, {"detail": {"m": {"n": pick()}}}]
        if rng.random() < 0.2:
            pattern["detail-type"] = "not a list"
        patterns.append(EventPattern(json.dumps(pattern), json.loads(json.dumps(pattern))))
    events = []
    for source, k, n in itertools.product(values, values, values[:6]):
        event = {"source": source, "detail-type": "T", "detail": {"k": k, "m": {"n": n}}}
        if isinstance(k, str) and k == "ab":
            del event["detail"]["k"]
        events.append(EventPattern._flatten_dict(json.loads(json.dumps(event))))
    with monkeypatch.context():
        moto_server.install_speed_patches()
    compiled = 0
    for pattern in patterns:
        test = moto_server._compiled_pattern(pattern)
        compiled += "generic" not in test.__qualname__
        for flat in events:
            assert test(flat) == pattern._does_event_match(flat, pattern._pattern), (pattern._raw_pattern, flat)
    assert compiled > 50, "most patterns take the compiled path"


# Logging, dispatch, response writes ------------------------------------------------------------


def test_requests_are_not_logged_one_line_each(fast, plain):
    logged = {}
    for emu in (fast, plain):
        before = len(emu.log.read_text())
        for _ in range(5):
            emu.client("sqs").list_queues()
        logged[emu] = emu.log.read_text()[before:]
    assert "POST / HTTP/1.1" not in logged[fast]
    assert "POST / HTTP/1.1" in logged[plain], "the check above can see a request line"


def test_each_service_still_reaches_its_own_backend(fast):
    for _ in range(2):  # the second round is answered from the dispatch cache
        assert "QueueUrls" in fast.client("sqs").list_queues() or True
        fast.client("sqs").create_queue(QueueName="routed")
        assert fast.client("sqs").get_queue_url(QueueName="routed")["QueueUrl"].endswith("/routed")
        assert "TableNames" in fast.client("dynamodb").list_tables()
        assert "EventBuses" in fast.client("events").list_event_buses()
        assert "SecretList" in fast.client("secretsmanager").list_secrets()
        assert json.load(urllib.request.urlopen(f"{fast.url}/moto-api/data.json"))


def test_large_responses_arrive_whole(fast):
    """Bodies far beyond the write buffer, and many small ones after each other."""
    secrets = fast.client("secretsmanager")
    value = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(6000))  # 384 KB
    secrets.create_secret(Name="big", SecretString=value)
    for _ in range(3):
        assert secrets.get_secret_value(SecretId="big")["SecretString"] == value
    sqs = fast.client("sqs")
    queue = sqs.create_queue(QueueName="big")["QueueUrl"]
    body = value[:200_000]
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"] == body
    for i in range(50):
        assert sqs.get_queue_url(QueueName="big")["QueueUrl"] == queue, i


# Keep-alive ------------------------------------------------------------------------------------

LIST_QUEUES = {"X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0"}
AUTH = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0"


def exchange(conn, method="POST", path="/", body=b"{}", headers=LIST_QUEUES):
    conn.request(method, path, body=body, headers={"Authorization": AUTH, **headers})
    response = conn.getresponse()
    return response.status, response.getheader("Connection"), response.read()


def test_two_requests_share_one_connection(fast, plain):
    for emu, kept in [(fast, True), (plain, False)]:
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
        first = exchange(conn)
        sock = conn.sock
        second = exchange(conn)
        assert first[0] == 200 and (b"QueueUrls" in first[2] or first[2] == b"{}"), first
        assert first == second
        assert (sock is not None and conn.sock is sock) == kept, emu
        assert first[1] == (None if kept else "close")
        conn.close()


def test_a_kept_connection_survives_errors_empty_and_unread_bodies(fast, plain):
    for emu in (fast, plain):
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
        seen = [
            exchange(conn, body=b'{"QueueName": "none"}', headers={**LIST_QUEUES, "X-Amz-Target": "AmazonSQS.GetQueueUrl"}),
            exchange(conn, body=b"", headers={**LIST_QUEUES, "Content-Length": "0"}),
            exchange(conn, "GET", "/moto-api/data.json", body=b"x" * 100_000, headers={}),  # body never read
            exchange(conn, "GET", "/moto-api/data.json", body=None, headers={}),
            exchange(conn, "HEAD", "/moto-api/data.json", body=None, headers={}),
            exchange(conn),
        ]
        assert [s[0] for s in seen] == [400, 200, 200, 200, 200, 200], seen
        assert seen[2][2] == seen[3][2] and json.loads(seen[3][2]) is not None
        assert seen[-1][2] == exchange(conn)[2]
        conn.close()


def test_an_unknown_action_is_answered_as_before(fast, plain):
    answers = []
    for emu in (fast, plain):
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
        for _ in range(2):
            status, _, body = exchange(conn, headers={**LIST_QUEUES, "X-Amz-Target": "AmazonSQS.NoSuchAction"})
            answers.append((status, body))
        conn.close()
    assert answers[0] == answers[1] == answers[2] == answers[3] and answers[0][0] >= 400, answers


def raw_response(sock, data=b""):
    """The next final response on a raw socket (after any interim 1xx ones): status line, headers
    (lowercased), its Content-Length body, and the bytes received after it."""
    while True:
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, data = data.partition(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        if not status.startswith("HTTP/1.1 1"):
            break
    headers = dict((k.lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines))
    length = int(headers.get("content-length", 0))
    while len(data) < length:
        data += sock.recv(65536)
    return status, headers, data[:length], data[length:]


def request_bytes(body, extra=""):
    headers = "".join(f"{k}: {v}\r\n" for k, v in {**LIST_QUEUES, "Authorization": AUTH}.items())
    return (f"POST / HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def test_100_continue_pipelining_and_chunked_requests(fast, plain):
    for emu in (fast, plain):
        with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
            sock.sendall(request_bytes(b"{}", "Expect: 100-continue\r\n")[:-2])  # all but the body
            sock.settimeout(0.5)  # the interim answer comes before the body is sent
            assert sock.recv(25).startswith(b"HTTP/1.1 100 Continue\r\n")
            sock.settimeout(5)
            sock.sendall(b"{}")
            status, headers, body, _ = raw_response(sock)
            assert status == "HTTP/1.1 200 OK" and (b"QueueUrls" in body or body == b"{}")
        if emu is fast:
            with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
                sock.sendall(request_bytes(b"{}") * 2)  # two requests in one write
                first = raw_response(sock)
                second = raw_response(sock, first[3])
                assert first[0] == second[0] == "HTTP/1.1 200 OK" and first[2] == second[2]
        with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
            headers = "".join(f"{k}: {v}\r\n" for k, v in {**LIST_QUEUES, "Authorization": AUTH}.items())
            sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{headers}Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode())
            status, headers, body, _ = raw_response(sock)
            assert status == "HTTP/1.1 200 OK" and headers["connection"] == "close"
            assert sock.recv(10) == b"", "body end unknown to the server: not kept alive"


def test_idle_kept_connections_do_not_hold_the_server(tmp_path):
    emu = Emulator(log=tmp_path / "moto.log")
    idle = [http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5) for _ in range(20)]
    for conn in idle:
        assert exchange(conn)[0] == 200
    client = emu.client("sqs")
    for i in range(20):
        client.create_queue(QueueName=f"q{i}")
    assert len(client.list_queues()["QueueUrls"]) == 20
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 5


# SQS -------------------------------------------------------------------------------------------


def redrive(emu):
    sqs = emu.client("sqs")
    dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    work = sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy, "VisibilityTimeout": "1"})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=work, MessageBody=f"m{i}")
    seen = []

    def receive(**kw):
        got = sqs.receive_message(
            QueueUrl=work, MaxNumberOfMessages=10, MessageSystemAttributeNames=["ApproximateReceiveCount"], **kw
        )
        return sorted((m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in got.get("Messages", []))

    first = receive()
    seen.append(first)
    seen.append(receive())  # in flight: nothing visible
    # Give one message back early: visible again at once.
    handle = sqs.receive_message(QueueUrl=work, VisibilityTimeout=0).get("Messages", [])
    seen.append(len(handle))
    time.sleep(1.2)
    seen.append(receive())  # visible again after the timeout: second receive
    time.sleep(1.2)
    seen.append(receive())  # received twice already: moved to the DLQ instead
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
    seen.append(sorted(m["Body"] for m in dead.get("Messages", [])))
    attrs = sqs.get_queue_attributes(QueueUrl=work, AttributeNames=["All"])["Attributes"]
    seen.append({k: attrs[k] for k in ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "MessageRetentionPeriod"]})
    return seen


def test_receive_counts_visibility_and_redrive_are_unchanged(fast, plain):
    seen = both(fast, plain, redrive)
    assert seen[0] == [("m0", "1"), ("m1", "1"), ("m2", "1")]
    assert seen[1] == []
    assert seen[5] == ["m0", "m1", "m2"]


def fifo_and_standard_sends(emu):
    sqs = emu.client("sqs")
    out = []
    for name, attrs in [
        ("cbd.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"}),
        ("nocbd.fifo", {"FifoQueue": "true"}),
        ("std", {}),
    ]:
        url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        for body in ["same", "same", "other"]:
            kw = {"MessageGroupId": "g"} if name.endswith(".fifo") else {}
            try:
                sqs.send_message(QueueUrl=url, MessageBody=body, **kw)
                out.append((name, body, "sent"))
            except ClientError as e:
                out.append((name, body, e.response["Error"]["Code"]))
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        out.append((name, sorted(m["Body"] for m in got.get("Messages", []))))
        try:
            batch = sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": "a", "MessageBody": "b1", **({"MessageGroupId": "g"} if name.endswith(".fifo") else {})}],
            )
            out.append((name, len(batch.get("Successful", [])), len(batch.get("Failed", []))))
        except ClientError as e:
            out.append((name, "batch", e.response["Error"]["Code"]))
    return out


def test_sends_and_content_based_deduplication_are_unchanged(fast, plain):
    out = both(fast, plain, fifo_and_standard_sends)
    assert ("cbd.fifo", ["other", "same"]) in out, "content-based deduplication still drops a repeat"
    assert ("std", ["other", "same", "same"]) in out


def test_retention_is_read_from_the_queue(monkeypatch):
    """In-process (a server cannot be made to age a message): the patched check answers as moto's."""
    sys.path.insert(0, str(SERVER.parent))
    import moto_server
    from moto.sqs.models import SQSBackend

    original = SQSBackend.is_message_valid_based_on_retention_period
    backend = SQSBackend(REGION, "123456789012")
    backend.create_queue("aged", MessageRetentionPeriod="60")
    message = backend.send_message("aged", "x")
    sent = message.sent_timestamp
    with monkeypatch.context():
        moto_server.install_speed_patches()
        patched = SQSBackend.is_message_valid_based_on_retention_period
    assert patched is not original
    for age_s in [0, 30, 59.5, 60.5, 3600]:
        message.sent_timestamp = sent - age_s * 1000
        assert patched(backend, "aged", message) == original(backend, "aged", message), age_s
    message.sent_timestamp = sent - 61_000
    assert patched(backend, "aged", message) is False


# DynamoDB --------------------------------------------------------------------------------------


def queries(emu):
    ddb = emu.client("dynamodb")
    ddb.create_table(
        TableName="state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName="flat",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for p in ["SKU#A", "SKU#B", "SKU#C"]:
        for i in [5, 1, 12, 3, 40, 7]:
            ddb.put_item(TableName="state", Item={"pk": {"S": p}, "sk": {"S": f"HOLD#{i:04d}"}, "n": {"N": str(i)}, "g": {"S": f"g{i % 2}"}})
        ddb.put_item(TableName="state", Item={"pk": {"S": p}, "sk": {"S": "POSITION"}, "n": {"N": "0"}})
    for i in range(5):
        ddb.put_item(TableName="flat", Item={"id": {"N": str(i)}, "v": {"S": "x" * i}})

    def q(**kw):
        out, pages = [], 0
        while True:
            got = ddb.query(TableName=kw.pop("TableName", "state"), **kw)
            out.append([{k: v for k, v in sorted(i.items())} for i in got["Items"]] + [got["Count"], got["ScannedCount"]])
            pages += 1
            if "LastEvaluatedKey" not in got or pages > 10:
                return out
            kw["ExclusiveStartKey"] = got["LastEvaluatedKey"]

    key = {":p": {"S": "SKU#B"}}
    return [
        q(KeyConditionExpression="pk = :p", ExpressionAttributeValues=key, ConsistentRead=True),
        q(KeyConditionExpression="pk = :p", ExpressionAttributeValues=key, ScanIndexForward=False),
        q(KeyConditionExpression="pk = :p AND begins_with(sk, :h)", ExpressionAttributeValues={**key, ":h": {"S": "HOLD#"}}),
        q(KeyConditionExpression="pk = :p AND sk < :h", ExpressionAttributeValues={**key, ":h": {"S": "HOLD#0007"}}),
        q(KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b", ExpressionAttributeValues={**key, ":a": {"S": "HOLD#0003"}, ":b": {"S": "HOLD#0012"}}),
        q(KeyConditionExpression="pk = :p", ExpressionAttributeValues=key, Limit=2),
        q(KeyConditionExpression="pk = :p", ExpressionAttributeValues=key, Limit=3, ScanIndexForward=False),
        q(KeyConditionExpression="pk = :p", FilterExpression="n > :n", ExpressionAttributeValues={**key, ":n": {"N": "4"}}),
        q(KeyConditionExpression="pk = :p", ExpressionAttributeValues=key, ProjectionExpression="sk"),
        q(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "SKU#NONE"}}),
        q(KeyConditionExpression="pk = :p AND sk = :s", ExpressionAttributeValues={**key, ":s": {"S": "POSITION"}}),
        q(TableName="flat", KeyConditionExpression="id = :i", ExpressionAttributeValues={":i": {"N": "3"}}),
        q(TableName="flat", KeyConditionExpression="id = :i", ExpressionAttributeValues={":i": {"N": "9"}}),
        sorted(map(str, q(IndexName="by-g", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "g1"}}))),
    ]


def test_query_results_and_order_are_unchanged(fast, plain):
    results = both(fast, plain, queries)
    holds = [i["sk"]["S"] for i in results[0][0][:-2]]
    assert holds == sorted(holds) and len(holds) == 7
    assert len(results[5]) == 4, "Limit=2 over 7 items: four pages (the last one empty)"


def range_queries(emu):
    """Key conditions on the range key of a large partition: pages, limits and order."""
    ddb = emu.client("dynamodb")
    for name, kind in [("rs", "S"), ("rn", "N")]:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": kind}],
            BillingMode="PAY_PER_REQUEST",
        )
    order = [(i * 37) % 101 for i in range(101)]  # every number below 101, shuffled
    for i in order:
        ddb.put_item(TableName="rs", Item={"pk": {"S": "P"}, "sk": {"S": f"HOLD#{i:04d}"}, "n": {"N": str(i)}})
        ddb.put_item(TableName="rn", Item={"pk": {"S": "P"}, "sk": {"N": str(i - 50)}})
    for sk in ["POSITION", "A", "ZZZ"]:
        ddb.put_item(TableName="rs", Item={"pk": {"S": "P"}, "sk": {"S": sk}})
    out = []

    def q(table, condition, values, **kw):
        pages = []
        while len(pages) < 30:
            try:
                got = ddb.query(TableName=table, KeyConditionExpression=condition, ExpressionAttributeValues={":p": {"S": "P"}, **values}, **kw)
            except ClientError as e:
                pages.append(e.response["Error"]["Code"])
                break
            pages.append(([i["sk"] for i in got["Items"]], got["Count"], got["ScannedCount"], got.get("LastEvaluatedKey")))
            if "LastEvaluatedKey" not in got:
                break
            kw["ExclusiveStartKey"] = got["LastEvaluatedKey"]
        out.append(pages)

    lo, hi = {":lo": {"S": "HOLD#0010"}, ":hi": {"S": "HOLD#0019"}}, {}
    for kw in [{}, {"Limit": 10}, {"Limit": 3}, {"ScanIndexForward": False}, {"Limit": 10, "ScanIndexForward": False}, {"Limit": 4, "ScanIndexForward": False}]:
        q("rs", "pk = :p AND sk BETWEEN :lo AND :hi", lo, **kw)
        q("rs", "pk = :p AND begins_with(sk, :h)", {":h": {"S": "HOLD#009"}}, **kw)
        q("rs", "pk = :p AND sk > :s", {":s": {"S": "HOLD#0095"}}, **kw)
        q("rs", "pk = :p AND sk <= :s", {":s": {"S": "HOLD#0002"}}, **kw)
        q("rs", "pk = :p AND sk = :s", {":s": {"S": "POSITION"}}, **kw)
        q("rs", "pk = :p AND sk < :s", {":s": {"S": "0"}}, **kw)
        q("rn", "pk = :p AND sk BETWEEN :lo AND :hi", {":lo": {"N": "-3"}, ":hi": {"N": "4.5"}}, **kw)
        q("rn", "pk = :p AND sk >= :s", {":s": {"N": "45"}}, **kw)
    q("rs", "pk = :p AND sk BETWEEN :lo AND :hi", {":lo": {"S": "HOLD#0019"}, ":hi": {"S": "HOLD#0010"}})
    q("rs", "pk = :p AND sk > :s", {":s": {"N": "1"}})
    q("rs", "pk = :p AND sk BETWEEN :lo AND :hi", {**lo, ":f": {"N": "15"}}, FilterExpression="n > :f", Limit=4)
    return out


def test_range_key_queries_are_unchanged(fast, plain):
    out = both(fast, plain, range_queries)
    assert [i["S"] for i in out[0][0][0]] == [f"HOLD#{i:04d}" for i in range(10, 20)]
    assert out[8][0][3] is not None and out[8][1][0] == [], "Limit reached exactly: a last key, then an empty page"


def index_queries(emu):
    """Queries on a sparse global index (as ExpiryIndex): items, order, pages and errors."""
    ddb = emu.client("dynamodb")
    ddb.create_table(
        TableName="ix",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in [("pk", "S"), ("sk", "S"), ("xp", "S"), ("xs", "S"), ("g", "N")]],
        GlobalSecondaryIndexes=[
            {"IndexName": "expiry", "KeySchema": [{"AttributeName": "xp", "KeyType": "HASH"}, {"AttributeName": "xs", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "KEYS_ONLY"}},
            {"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in [(n * 37) % 60 for n in range(60)]:
        item = {"pk": {"S": f"SKU#{i % 4}"}, "sk": {"S": f"HOLD#{i:03d}"}, "g": {"N": str(i % 3)}}
        if i % 5:  # sparse: some items are not in the index
            item.update({"xp": {"S": "HELD" if i % 7 else "OTHER"}, "xs": {"S": f"{(i * 13) % 17:03d}#{i}"}})
        ddb.put_item(TableName="ix", Item=item)
    out = []

    def q(index, condition, values, **kw):
        pages = []
        while len(pages) < 40:
            try:
                got = ddb.query(TableName="ix", IndexName=index, KeyConditionExpression=condition, ExpressionAttributeValues=values, **kw)
            except ClientError as e:
                pages.append(e.response["Error"]["Code"])
                break
            pages.append(([sorted(i.items()) for i in got["Items"]], got["Count"], got["ScannedCount"], got.get("LastEvaluatedKey")))
            if "LastEvaluatedKey" not in got:
                break
            kw["ExclusiveStartKey"] = got["LastEvaluatedKey"]
        out.append(pages)

    held = {":h": {"S": "HELD"}}
    for kw in [{}, {"Limit": 5}, {"ScanIndexForward": False}, {"Limit": 7, "ScanIndexForward": False}]:
        q("expiry", "xp = :h", held, **kw)
        q("expiry", "xp = :h AND xs <= :now", {**held, ":now": {"S": "008#~"}}, **kw)
        q("expiry", "xp = :h AND begins_with(xs, :p)", {**held, ":p": {"S": "01"}}, **kw)
        q("by-g", "g = :g", {":g": {"N": "1"}}, **kw)
    q("expiry", "xp = :h", {":h": {"S": "NONE"}})
    q("expiry", "xp = :h", held, ConsistentRead=True)
    q("expiry", "xp = :h", {**held, ":g": {"N": "2"}}, FilterExpression="g = :g")
    q("nope", "xp = :h", held)
    return out


def test_index_queries_are_unchanged(fast, plain):
    out = both(fast, plain, index_queries)
    first = out[0][0][0]
    assert len(first) == sum(1 for i in range(60) if i % 5 and i % 7), "only indexed items with that hash key"
    assert [dict(i)["xs"]["S"] for i in first] == sorted(dict(i)["xs"]["S"] for i in first)
    assert len(out[4]) > 2 and out[-1] == ["ResourceNotFoundException"], "Limit=5: several pages"


def conditional_writes(emu):
    ddb = emu.client("dynamodb")
    ddb.create_table(
        TableName="cw",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    pos = {"pk": {"S": "SKU#A"}, "sk": {"S": "POSITION"}}
    ddb.put_item(TableName="cw", Item={**pos, "available": {"N": "2"}})
    out = []

    def take(n, hold):
        try:
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": "cw",
                            "Key": pos,
                            "UpdateExpression": "SET available = available - :n",
                            "ConditionExpression": "available >= :n",
                            "ExpressionAttributeValues": {":n": {"N": str(n)}},
                        }
                    },
                    {"Put": {"TableName": "cw", "Item": {"pk": {"S": "SKU#A"}, "sk": {"S": hold}}, "ConditionExpression": "attribute_not_exists(pk)"}},
                ]
            )
            return "ok"
        except ClientError as e:
            return [r["Code"] for r in e.response.get("CancellationReasons", [])] or e.response["Error"]["Code"]

    out.append(take(1, "HOLD#1"))
    out.append(take(1, "HOLD#1"))  # the hold exists: cancelled, available unchanged
    out.append(take(5, "HOLD#2"))  # not enough: cancelled, no hold written
    out.append(take(1, "HOLD#3"))
    out.append(take(1, "HOLD#4"))  # nothing left
    try:
        ddb.put_item(TableName="cw", Item=pos, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as e:
        out.append(e.response["Error"]["Code"])
    items = ddb.query(TableName="cw", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "SKU#A"}})["Items"]
    out.append(sorted((i["sk"]["S"], i.get("available", {}).get("N")) for i in items))
    return out


def test_conditional_writes_and_transactions_are_unchanged(fast, plain):
    out = both(fast, plain, conditional_writes)
    assert out[0] == "ok" and out[3] == "ok" and out[4] != "ok"
    assert out[-1] == [("HOLD#1", None), ("HOLD#3", None), ("POSITION", "0")]


def update_expressions(emu):
    """Valid and invalid UpdateExpressions, each sent twice (the second from the parse cache)."""
    ddb = emu.client("dynamodb")
    ddb.create_table(
        TableName="ux",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    out = []

    def key(sk):
        return {"pk": {"S": "P"}, "sk": {"S": sk}}

    def update(sk, expression, values=None, names=None, condition=None):
        kw = {"TableName": "ux", "Key": key(sk), "UpdateExpression": expression, "ReturnValues": "ALL_NEW"}
        if values is not None:
            kw["ExpressionAttributeValues"] = values
        if names is not None:
            kw["ExpressionAttributeNames"] = names
        if condition is not None:
            kw["ConditionExpression"] = condition
        try:
            out.append(sorted(ddb.update_item(**kw).get("Attributes", {}).items()))
        except ClientError as e:
            out.append((e.response["Error"]["Code"], e.response["Error"]["Message"]))

    counters = "SET sku = :sku, changed_at = :now ADD on_hand :oh, available :av, version :one"
    values = {":sku": {"S": "A"}, ":now": {"N": "7"}, ":oh": {"N": "5"}, ":av": {"N": "10"}, ":one": {"N": "1"}}
    for sk in ["NEW", "NEW", "OTHER"]:  # a new item, then an existing one
        update(sk, counters, values)
    update("NEW", "SET available = available - :n, #s = :s", {":n": {"N": "1"}, ":s": {"S": "held"}}, {"#s": "status"}, "available >= :n")
    update("NEW", "SET available = available - :n, #s = :s", {":n": {"N": "99"}, ":s": {"S": "held"}}, {"#s": "status"}, "available >= :n")
    update("NEW", "SET tags = list_append(if_not_exists(tags, :empty), :t), m = :m ADD ss :ss", {":empty": {"L": []}, ":t": {"L": [{"S": "x"}]}, ":m": {"M": {"a": {"N": "1"}}}, ":ss": {"SS": ["a", "b"]}})
    update("NEW", "SET tags = list_append(if_not_exists(tags, :empty), :t), m = :m ADD ss :ss", {":empty": {"L": []}, ":t": {"L": [{"S": "y"}]}, ":m": {"M": {"a": {"N": "1"}}}, ":ss": {"SS": ["c"]}})
    update("NEW", "SET m.a = m.a + :one, tags[0] = :s REMOVE sku DELETE ss :ss", {":one": {"N": "1"}, ":s": {"S": "z"}, ":ss": {"SS": ["a"]}})
    update("NEW", "SET #a = :v, #b = :v", {":v": {"N": "1"}}, {"#a": "x", "#b": "y"})
    for _ in range(2):
        update("NEW", "SET #a = :v, #b = :v", {":v": {"N": "1"}}, {"#a": "x", "#b": "x"})  # same expression, now one path twice
        update("NEW", "SET a = :v SET b = :v", {":v": {"N": "1"}})
        update("NEW", "ADD a :v ADD b :v", {":v": {"N": "1"}})
        update("NEW", "SET a = :v, a = :v", {":v": {"N": "1"}})
        update("NEW", "SET m = :v, m.a = :v", {":v": {"N": "1"}})
        update("NEW", "SET a = ", {":v": {"N": "1"}})
        update("NEW", "SET a = :missing, b = :v", {":v": {"N": "1"}})
        update("NEW", "SET a = nothing + :v", {":v": {"N": "1"}})
        update("NEW", "SET sk = :v", {":v": {"S": "X"}})
        update("NEW", "ADD tags :v", {":v": {"N": "1"}})
        update("NEW", "SET on_hand = on_hand + :v", {":v": {"S": "text"}})
        update("NEW", "SET version = version + :one", {":one": {"N": "1"}})

    def transact(need, hold):
        try:
            ddb.transact_write_items(
                TransactItems=[
                    {"Update": {"TableName": "ux", "Key": key("NEW"), "UpdateExpression": counters.replace(":av", ":dv"),
                                "ConditionExpression": "available >= :need",
                                "ExpressionAttributeValues": {**values, ":dv": {"N": str(-need)}, ":need": {"N": str(need)}}}},
                    {"Put": {"TableName": "ux", "Item": key(hold), "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Update": {"TableName": "ux", "Key": key("COUNT"), "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                ]
            )
            return "ok"
        except ClientError as e:
            return [r["Code"] for r in e.response.get("CancellationReasons", [])] or (e.response["Error"]["Code"], e.response["Error"]["Message"])

    out += [transact(1, "H1"), transact(1, "H1"), transact(100, "H2"), transact(2, "H3")]
    for bad in ["SET a = :one SET b = :one", "SET a = :one, a = :one", "SET a ="]:
        try:
            ddb.transact_write_items(TransactItems=[
                {"Update": {"TableName": "ux", "Key": key("COUNT"), "UpdateExpression": bad, "ExpressionAttributeValues": {":one": {"N": "1"}}}}
            ])
            out.append("ok")
        except ClientError as e:
            out.append((e.response["Error"]["Code"], e.response["Error"]["Message"], [r["Code"] for r in e.response.get("CancellationReasons", [])]))
    items = ddb.query(TableName="ux", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "P"}})["Items"]
    out.append([sorted(i.items()) for i in items])
    return out


def test_update_expressions_results_and_errors_are_unchanged(fast, plain):
    out = both(fast, plain, update_expressions)
    assert out[1] == [("available", {"N": "20"}), ("changed_at", {"N": "7"}), ("on_hand", {"N": "10"}), ("pk", {"S": "P"}), ("sk", {"S": "NEW"}), ("sku", {"S": "A"}), ("version", {"N": "2"})]
    assert ("available", {"N": "19"}) in out[3] and out[4][0] == "ConditionalCheckFailedException"
    assert out[9] == out[21] and "path one: [x], path two: [x]" in out[9][1], "same expression, other names"
    assert out[10:20] == out[22:32] and all(o[0] == "ValidationException" for o in out[10:20])
    assert out[33:37] == ["ok", ["None", "ConditionalCheckFailed", "None"], ["ConditionalCheckFailed", "None", "None"], "ok"]
    assert [o[0] for o in out[37:40]] == ["ValidationException"] * 3


def item_reads(emu):
    """Items of every attribute type, read back by each operation that returns items."""
    ddb = emu.client("dynamodb")
    ddb.create_table(
        TableName="types",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    nested = {"M": {"a": {"S": "x"}, "n": {"N": "-1.50"}, "l": {"L": [{"S": ""}, {"N": "0"}, {"M": {}}, {"L": []}]}, "e": {"M": {}}}}
    items = [
        {"s": {"S": "plain"}, "n": {"N": "42"}, "u": {"S": "ünïcode \u2713 \"quoted\""}, "empty": {"S": ""}},
        {"ss": {"SS": ["b", "a"]}, "ns": {"NS": ["1", "2.5", "-3"]}, "m": nested, "l": {"L": [nested, {"SS": ["x"]}]}},
        {"b": {"B": b"\x00\x01bytes"}, "bs": {"BS": [b"a", b"b"]}, "null": {"NULL": True}, "t": {"BOOL": True}, "f": {"BOOL": False}},
        {"mixed": {"M": {"s": {"S": "x"}, "b": {"B": b"y"}, "z": {"NULL": True}}}, "lb": {"L": [{"BOOL": False}, {"S": "after"}]}},
    ]
    for i, attrs in enumerate(items):
        ddb.put_item(TableName="types", Item={"pk": {"S": "P"}, "sk": {"S": f"I{i}"}, **attrs})
    key = {"pk": {"S": "P"}, "sk": {"S": "I1"}}
    out = [ddb.get_item(TableName="types", Key={"pk": {"S": "P"}, "sk": {"S": f"I{i}"}}).get("Item") for i in range(len(items) + 1)]
    out.append(ddb.query(TableName="types", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "P"}})["Items"])
    out.append(ddb.query(TableName="types", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "P"}}, ProjectionExpression="m.l[0], ns, b", Limit=2))
    out.append(ddb.scan(TableName="types")["Items"])
    out.append(ddb.batch_get_item(RequestItems={"types": {"Keys": [key, {"pk": {"S": "P"}, "sk": {"S": "I2"}}]}})["Responses"])
    for rv in ["ALL_NEW", "ALL_OLD", "UPDATED_NEW"]:
        out.append(ddb.update_item(TableName="types", Key=key, UpdateExpression="SET m.a = :v ADD ns :n", ExpressionAttributeValues={":v": {"S": rv}, ":n": {"NS": ["7"]}}, ReturnValues=rv)["Attributes"])
    out.append(ddb.put_item(TableName="types", Item={**key, "s": {"S": "new"}}, ReturnValues="ALL_OLD")["Attributes"])
    out.append(ddb.delete_item(TableName="types", Key={"pk": {"S": "P"}, "sk": {"S": "I3"}}, ReturnValues="ALL_OLD")["Attributes"])
    try:
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "types", "Item": {"pk": {"S": "P"}, "sk": {"S": "I2"}}, "ConditionExpression": "attribute_not_exists(pk)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}])
    except ClientError as e:
        out.append(e.response.get("CancellationReasons"))
    for response in out:
        if isinstance(response, dict):
            response.pop("ResponseMetadata", None)
    return out


def test_items_of_every_type_read_back_unchanged(fast, plain):
    out = both(fast, plain, item_reads)
    assert out[1]["m"]["M"]["l"]["L"][2] == {"M": {}} and out[2]["b"]["B"] == b"\x00\x01bytes" and out[4] is None
    assert out[2]["null"] == {"NULL": True} and out[2]["f"] == {"BOOL": False}
    assert out[-1][0]["Item"]["bs"]["BS"] == [b"a", b"b"]


# The default set-up: two processes --------------------------------------------------------------


def test_with_emulator_splits_dynamodb_from_the_rest():
    probe = r"""
import os, boto3
ddb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
ddb.create_table(TableName="only-here", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
sqs.create_queue(QueueName="only-there")
rest = os.environ["AWS_ENDPOINT_URL"]
print(boto3.client("dynamodb", endpoint_url=rest).list_tables()["TableNames"],
      boto3.client("dynamodb").list_tables()["TableNames"],
      "QueueUrls" in boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"]).list_queues(),
      "QueueUrls" in sqs.list_queues())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_DEFAULT_REGION"] = REGION
    run = subprocess.run(
        [str(ROOT / "infra" / "with-emulator.sh"), sys.executable, "-c", probe],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["[]", "['only-here']", "False", "True"]
