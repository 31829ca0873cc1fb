"""Starts moto in server mode with DynamoDB made safe under concurrency, and (unless `--plain`)
moto's per-request overheads removed.

Correctness, always applied. EventBridge partner event buses, which moto creates but cannot reach
(infra/tests/test_moto_server.py checks them): a partner bus is named after its partner event
source, `aws.partner/<partner>/...`, slashes included, and moto reads every bus name or ARN as its
last `/`-separated part, so no rule or event found one; here only an ARN's `...:event-bus/` prefix
is taken off. And moto put PutPartnerEvents on each subscribed account's default bus, where
EventBridge puts them on the partner bus associated with their source, which bears its name.

Also always applied: moto's TransactWriteItems snapshots every touched table with deepcopy
before applying a transaction and restores the snapshot if a condition fails. That is not safe
against concurrent requests on the server's other threads (it fails with "dictionary changed size
during iteration" or loses a concurrent write), and it costs time in proportion to the whole table.
DynamoDB itself is linearisable per item and its transactions are serialisable, so here:
- every DynamoDB request is serialised (SQS and EventBridge stay concurrent);
- a transaction snapshots only the items it touches, and restores those if it is cancelled.

Speed, left out with `--plain` (for side-by-side benchmarks against stock moto). Each removes work
a profile of the local stack found on every request and keeps what clients observe
(infra/tests/test_moto_server.py checks each):
- EventBridge: a target without an InputTransformer gets the standard event without building
  JSONPath parsers and re-parsing a JSON template; parsers of a real transformer are cached;
- EventBridge put_events: an entry's event is normalised and flattened once, not once per rule of
  the bus; each rule's pattern is compiled once; only matching rules get their copy of the event;
- werkzeug: no log line per request (server errors are still logged);
- dispatch: the backend for a host is looked up once, not by listing moto's package directory;
- responses are written to the socket in one buffered write, not one send per header line;
- SQS receive: the retention check reads the queue's retention attribute instead of computing
  every queue attribute (message counts included) for each message it looks at;
- SQS send: content-based deduplication is read from the queue instead of from all its attributes;
- DynamoDB Query on a table reads its one partition instead of sorting every item of the table,
  and of that partition only the run of range keys its key condition selects;
- DynamoDB Query on an index sorts only the items with the queried index hash key, not the table;
- HTTP/1.1 connections are kept open between requests instead of one connection per request;
- DynamoDB UpdateExpressions are parsed once per expression string, copied cheaply, and their
  expression-only checks skipped once the same expression and names have passed;
- a handler's method names are listed once, not with inspect.getmembers on every request;
- DynamoDB responses: AttributeValues of strings, numbers, string/number sets, maps and lists are
  copied as they are instead of walked member by member through moto's shape serialiser.

Usage: moto_server.py [--plain] [moto server arguments: -H HOST -p PORT ...]
"""

import copy
import functools
import inspect
import json
import pickle
import sys
import threading

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_lock = threading.RLock()
_call_action = DynamoHandler.call_action
_transact_write_items = DynamoDBBackend.transact_write_items


def _serialised_call_action(self):
    with _lock:
        return _call_action(self)


class _NoTableSnapshot:
    """Stands in for `copy` inside moto's transaction code: no whole-table snapshot."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value


def _transact_write_items_touched_only(self, transact_items):
    saved = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName"))
        attrs = op.get("Item") or op.get("Key") or {}
        if table is None or table.hash_key_attr not in attrs:
            continue
        hash_key = DynamoType(attrs[table.hash_key_attr])
        range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr in attrs else None
        saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    dynamodb_models.copy = _NoTableSnapshot
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table, hash_key, range_key, item in reversed(saved):
            if item is None:
                table.delete_item(hash_key, range_key)
            elif range_key is not None:
                table.items[hash_key][range_key] = item
            else:
                table.items[hash_key] = item
        raise
    finally:
        dynamodb_models.copy = copy


DynamoHandler.call_action = _serialised_call_action
DynamoDBBackend.transact_write_items = _transact_write_items_touched_only


def install_partner_bus_patches():
    from moto.events.models import EventsBackend, events_backends

    def normalize_event_bus_arn(self, event_bus_arn):
        if event_bus_arn is None:
            return "default"
        if event_bus_arn.startswith("arn:"):
            return event_bus_arn.split(":event-bus/", 1)[-1]
        return event_bus_arn

    def put_partner_events(self, entries):
        for entry in entries:
            source = entry["Source"]
            for account_id in self.partner_event_sources[source].accounts:
                backend = events_backends[account_id][self.region_name]
                # Until the account associates the source with a bus, its events go nowhere.
                if source in backend.event_buses:
                    backend.put_events([{**entry, "EventBusName": source}])

    EventsBackend._normalize_event_bus_arn = normalize_event_bus_arn
    EventsBackend.put_partner_events = put_partner_events


def install_speed_patches():
    import jsonpath_ng.ext
    from moto.core import responses as core_responses
    from moto.core.serialize import BaseJSONSerializer
    from moto.core.utils import unix_time
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing import validators as ddb_validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, UpdateExpression
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator, Validator
    from moto.events import models as events_models
    from moto.events.models import EventPattern, EventsBackend
    from moto.events.utils import EventTemplateParser
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
    from moto.sqs.models import SQSBackend

    # EventBridge. moto renders even the default target input through its template parser: eight
    # JSONPath parses, string substitution and json.loads per event and target. With neither an
    # InputTemplate nor InputPathsMap that default yields exactly these fields of the event.
    parse_template = EventTemplateParser.parse

    def parse_template_fast(input_template, input_paths_map, event):
        if input_template or input_paths_map:
            return parse_template(input_template, input_paths_map, event)
        return {
            "id": event["id"],
            "time": event["time"],
            "version": "0",
            "detail-type": event["detail-type"],
            "source": event["source"],
            "region": event["region"],
            "resources": event["resources"],
            "detail": event["detail"],
        }

    EventTemplateParser.parse = staticmethod(parse_template_fast)
    # A real InputTransformer: the template parser imports `parse` at each call, so this caches it.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=512)(jsonpath_ng.ext.parse)

    # EventBridge put_events built the event afresh for every rule of the bus (a deepcopy, two
    # clock reads, a parse of Detail) and matched it by a JSON round trip, flattening and an
    # interpreted walk of the pattern, though most rules don't match. Here the event is normalised
    # and flattened once per entry, each rule's pattern is compiled once, and only a matching rule
    # gets its own copy of the event (as before) to deliver; its targets are served as before.
    put_events = EventsBackend.put_events
    matches_event = EventPattern.matches_event
    delivering = threading.local()

    def matches_event_compiled(self, event):
        if not self._pattern or getattr(delivering, "event", None) is event:
            return True
        return _compiled_pattern(self)(EventPattern._flatten_dict(json.loads(json.dumps(event))))

    def put_events_matched_once(self, events):
        if len(events) > 10 or not all(isinstance(e, dict) for e in events):
            return put_events(self, events)
        entries = []
        for event in events:
            if not (event.get("Source") and event.get("DetailType") and event.get("Detail")):
                entries += put_events(self, [event])  # the error entry, as moto words it
                continue
            try:
                detail = json.loads(event["Detail"])
            except ValueError:
                entries += put_events(self, [event])
                continue
            if not isinstance(detail, dict):
                entries += put_events(self, [event])  # moto's warning; no rule sees it
                continue
            event_id = str(events_models.random.uuid4())
            entries.append({"EventId": event_id})
            event_bus = self.describe_event_bus(self._normalize_event_bus_arn(event.get("EventBusName")))
            rules = list(event_bus.rules.values())
            if not rules:
                continue
            now = unix_time()

            def message(detail):
                return {
                    "version": "0",
                    "id": event_id,
                    "detail-type": event["DetailType"],
                    "source": event["Source"],
                    "account": self.account_id,
                    "time": event.get("Time", now),
                    "region": self.region_name,
                    "resources": event.get("Resources", []),
                    "detail": detail,
                    "ingestion-time": now,
                }

            flat = EventPattern._flatten_dict(json.loads(json.dumps(message(detail))))
            for rule in rules:
                pattern = rule.event_pattern
                if pattern._pattern and not _compiled_pattern(pattern)(flat):
                    continue
                event_msg = message(json.loads(event["Detail"]))
                delivering.event = event_msg
                try:
                    rule.send_to_targets(event_msg)
                finally:
                    delivering.event = None
        return entries

    EventPattern.matches_event = matches_event_compiled
    EventsBackend.put_events = put_events_matched_once

    # DynamoDB responses: moto serialises each AttributeValue of each item by its shape, asking an
    # attribute picker (a context object, alias providers, name transforms) for each of the ten
    # members. For values of strings, numbers, string/number sets, maps and lists of these that
    # walk only copies the value; here it is copied directly. Binary, null and boolean values, or
    # anything unusual, still take moto's way.
    serialize_structure = BaseJSONSerializer._serialize_type_structure

    def serialize_structure_fast(self, serialized, value, shape, key):
        if key and shape.name == "AttributeValue" and not getattr(self._value_picker, "response_transformers", True):
            plain = _plain_attribute_value(value)
            if plain is not None:
                self._default_serialize(serialized, plain, shape, key)
                return
        serialize_structure(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure_fast

    # One formatted log line per request costs more than many requests' own work.
    log_request = MotoRequestHandler.log_request

    def log_server_errors_only(self, code="-", size="-"):
        if isinstance(code, int) and code >= 500:
            log_request(self, code, size)

    MotoRequestHandler.log_request = log_server_errors_only

    # The answer for a host never changes; moto works it out by listing its package directory
    # (hundreds of stat calls) and matching hundreds of URL patterns, under a global lock.
    get_backend_for_host = DomainDispatcherApplication.get_backend_for_host
    backends_by_host = {}

    def cached_get_backend_for_host(self, host):
        if host not in backends_by_host:
            backends_by_host[host] = get_backend_for_host(self, host)
        return backends_by_host[host]

    DomainDispatcherApplication.get_backend_for_host = cached_get_backend_for_host

    # Each request listed its handler class's methods with inspect.getmembers to check the
    # action is one of them; the classes don't change while the server runs.
    core_responses.method_names_from_class = functools.lru_cache(maxsize=None)(core_responses.method_names_from_class)

    # werkzeug flushes after each body write, so a buffer turns status line, headers and body
    # into one send instead of one per write.
    MotoRequestHandler.wbufsize = 64 * 1024

    # werkzeug answers every request with "Connection: close", so each SDK request paid a TCP
    # connect and a new server thread. Connections stay open here (a thread per connection, as
    # before, blocked while idle) when the request body's end is known.
    run_wsgi = MotoRequestHandler.run_wsgi
    send_header = MotoRequestHandler.send_header

    def run_wsgi_keep_alive(self):
        self._keep_alive = False
        length = self.headers.get("Content-Length", "0").strip()
        if (
            self.close_connection
            or self.request_version != "HTTP/1.1"
            or "Transfer-Encoding" in self.headers
            or not length.isdigit()
        ):
            return run_wsgi(self)
        self._keep_alive = True
        expect_continue = self.headers.get("Expect", "").lower().strip(" \t") == "100-continue"
        connection_rfile = self.rfile
        self.rfile = body = _RequestBody(connection_rfile, int(length), self.wfile if expect_continue else None)
        try:
            run_wsgi(self)
        finally:
            self.rfile = connection_rfile
        if self.close_connection or not body.finish():
            self.close_connection = True

    def send_header_keep_alive(self, keyword, value):
        if keyword.lower() == "connection" and getattr(self, "_keep_alive", False) and not self.close_connection:
            return  # werkzeug's "close"; HTTP/1.1 keeps the connection without a header
        send_header(self, keyword, value)

    MotoRequestHandler.run_wsgi = run_wsgi_keep_alive
    MotoRequestHandler.send_header = send_header_keep_alive

    # SQS receive checks retention for each message through get_queue_attributes, which builds
    # every attribute of the queue (three scans of its messages) twice per call.
    def retention_from_queue(self, queue_name, message):
        retention_period = self.get_queue(queue_name).message_retention_period
        return retention_period + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = retention_from_queue

    # SQS send reads ContentBasedDeduplication from `queue.attributes`, which builds every
    # attribute (three scans of the queue's messages). That attribute exists only on FIFO queues,
    # as "true" or "false"; the send sees a queue whose `attributes` hold just that.
    send_message = SQSBackend.send_message

    def send_message_cheap(self, queue_name, message_body, *args, **kwargs):
        queue = self.get_queue(queue_name)
        attributes = {}
        if queue.fifo_queue:
            attributes["ContentBasedDeduplication"] = str(bool(queue.content_based_deduplication)).lower()
        return send_message(_QueueView(self, queue, attributes), queue_name, message_body, *args, **kwargs)

    SQSBackend.send_message = send_message_cheap

    # DynamoDB Query on a table (not an index) sorts every item of the table and keeps those of
    # one partition. Serialised DynamoDB requests (above) make it safe to hand `query` just that
    # partition for the call; it then sorts by range key as before.
    query = Table.query
    query_parameters = inspect.signature(query)

    def query_one_partition(self, hash_key, *args, **kwargs):
        call = query_parameters.bind(self, hash_key, *args, **kwargs).arguments
        if call.get("index_name"):
            return query_index(self, call, hash_key, *args, **kwargs)
        if hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        partition = self.items.get(hash_key)
        if partition is None:
            items = []
        elif self.range_key_attr:
            items = _range_key_run(self, list(partition.values()), call)
        else:
            items = [partition]
        self.all_items = lambda: items
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    # A Query on an index sorted every item of the table by its key (thousands of DynamoType
    # comparisons per call, growing with the table) before keeping those whose index hash key
    # matches. Keeping them first, by the same test, and sorting only those gives the same items in
    # the same order.
    def query_index(self, call, *args, **kwargs):
        conditions = dict(call.get("hash_key_conditions") or [])
        if not conditions:
            return query(self, *args, **kwargs)

        def matching_items():
            chosen = []
            for hash_set in self.items.values():
                for item in hash_set.values() if self.range_key_attr else (hash_set,):
                    values = item.attrs.get if isinstance(item, Item) else {}.get
                    if all(not (not values(name) or values(name) != value) for name, value in conditions.items()):
                        chosen.append(item)
            return sorted(chosen, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

        self.all_items = matching_items
        try:
            return query(self, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query_one_partition

    # DynamoDB UpdateExpression, most of a transaction's time: each update parses its expression
    # twice (request check and update), deep-copies the tree and walks it ten times. Parsing is
    # pure, so a tree is parsed once per expression string and reused as a pickle (a fresh copy
    # each time, cheaper than deepcopy); a parse error is never cached, so it is raised as before.
    make = UpdateExpressionParser.make.__func__

    @functools.lru_cache(maxsize=1024)
    def parsed(expression):
        return pickle.dumps(make(UpdateExpressionParser, expression), pickle.HIGHEST_PROTOCOL)

    def make_cached(cls, expression):
        if cls is not UpdateExpressionParser or not isinstance(expression, str):
            return make(cls, expression)
        tree = pickle.loads(parsed(expression))
        tree._source_expression = expression
        return tree

    UpdateExpressionParser.make = classmethod(make_cached)

    def copy_tree(value, memo=None):
        if memo is None and isinstance(value, UpdateExpression):
            return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
        return copy.deepcopy(value, memo)

    ddb_validators.deepcopy = copy_tree

    # Every walk rebuilt its processor map (a dict and a tuple) at each node of the tree.
    def processing_map_once(self):
        if "_map" not in self.__dict__:
            self._map = self._processing_map()
            self._types = tuple(self._map)
        return self._map

    def process(self, node):
        for class_key, processor in processing_map_once(self).items():
            if isinstance(node, class_key):
                return processor(node)

    def nodes_to_be_processed(self):
        processing_map_once(self)
        return self._types

    DepthFirstTraverser.process = process
    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed

    # The first two validators, clause counts and overlapping paths, depend on nothing but the
    # expression and its attribute names, and only raise errors; they cost as much as the other
    # eight (each calls find_clauses on every subtree). Once an expression with those names has
    # passed all validation, they are known to pass again and are skipped.
    validate = Validator.validate
    structure_checks = (ActionCountValidator, OverlappingPathsValidator)
    structure_passed = set()

    def validate_structure_once(self):
        source = getattr(self.node_to_validate, "_source_expression", None)
        first = tuple(type(p) for p in self.processors[:2])
        if source is None or first != structure_checks:
            return validate(self)
        key = (source, tuple(sorted((self.expression_attribute_names or {}).items())))
        processors = self.processors[2:] if key in structure_passed else self.processors
        node = self.node_to_validate
        for processor in processors:
            node = processor.traverse(node)
        if len(structure_passed) > 4096:
            structure_passed.clear()
        structure_passed.add(key)
        return node

    Validator.validate = validate_structure_once


def _range_key_run(table, items, call):
    """The partition's items as `Table.query` needs them, in range-key order. `query` sorts them
    itself by DynamoType.__lt__, which compares `cast_value`s: in that order already, its sort
    makes n-1 comparisons instead of n log n.

    With a range-key condition (no start key, no legacy filters), the items it matches are one run
    of that order; `query` looks at the others only to stop at the Limit or at 1 MB of results
    (the neighbour after the run, or one of 410 KB at most). So the run and one neighbour each side
    give the same answer, unless the run itself nears 1 MB (then all items are handed over)."""
    from moto.dynamodb.comparisons import get_comparison_func
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    try:
        keys = [item.range_key.cast_value for item in items]
        order = sorted(range(len(items)), key=keys.__getitem__)
    except TypeError:
        return items
    items = [items[i] for i in order]
    comparison, limit = call.get("range_comparison"), call.get("limit")
    conditions = call.get("range_key_conditions")
    if (
        not comparison
        or call.get("exclusive_start_key") is not None
        or call.get("filter_kwargs")
        or (limit is not None and limit < 1)
        or (conditions and conditions[-1][0] != table.range_key_attr)
        or get_comparison_func(comparison) is None
    ):
        return items
    try:
        bounds = [value.cast_value for value in call["range_objs"]]
        matches = [n for n, i in enumerate(order) if get_comparison_func(comparison)(keys[i], *bounds)]
    except Exception:
        return items  # `query` raises its own error for this comparison
    if not matches:
        return []
    first, last = matches[0], matches[-1]
    if last - first + 1 != len(matches):
        return items
    if sum(items[n].size() for n in matches) + 410_000 > RESULT_SIZE_LIMIT:
        return items
    return items[max(first - 1, 0) : last + 2]


def _plain_attribute_value(value):
    """`value` as moto's serialiser writes an AttributeValue whose members are all strings, string
    lists, maps or lists of such values (where its walk only copies); None for anything else."""
    if type(value) is not dict or len(value) != 1:
        return None
    ((kind, v),) = value.items()
    if kind in ("S", "N"):
        return {kind: v} if type(v) is str else None
    if kind in ("SS", "NS"):
        return {kind: list(v)} if type(v) is list and all(type(i) is str for i in v) else None
    if kind == "M" and type(v) is dict:
        out = {}
        for name, item in v.items():
            out[name] = _plain_attribute_value(item)
            if out[name] is None:
                return None
        return {"M": out}
    if kind == "L" and type(v) is list:
        out = [_plain_attribute_value(item) for item in v]
        return None if None in out else {"L": out}
    return None


def _compiled_pattern(pattern):
    """`pattern` (an EventPattern) as a function of the flattened event, cached on the pattern:
    what moto's `_does_event_match` answers. Filters of the kinds the project's rules use (values,
    `exists`, `prefix`, `anything-but` of values or a prefix) become set lookups and string tests;
    a pattern with any other filter is evaluated by moto's own walk."""
    from moto.events.models import UNDEFINED

    cached = pattern.__dict__.get("_compiled")
    if cached is not None and cached[0] is pattern._pattern:
        return cached[1]

    def generic(flat):
        return pattern._does_event_match(flat, pattern._pattern)

    def values_test(values):
        if not all(v is None or isinstance(v, (str, bool, int)) for v in values):
            return None
        members = frozenset(values)

        def test(item):
            if item is UNDEFINED:
                return False
            if isinstance(item, (str, int, float)) or item is None:
                return item in members
            return pattern._does_item_match_filters(item, values)

        return test

    def prefix_test(prefix, negate):
        if not isinstance(prefix, str):
            return None

        def starts(value):
            return isinstance(value, str) and value.startswith(prefix)

        def starts_inner(value):  # `anything-but` asks moto's prefix test of each element again
            return any(starts(v) for v in value) if isinstance(value, list) else starts(value)

        def test(item):
            if item is UNDEFINED:
                return False
            if not negate:
                return any(starts(i) for i in item) if isinstance(item, list) else starts(item)
            return any(not starts_inner(i) for i in item) if isinstance(item, list) else not starts_inner(item)

        return test

    def filter_test(f):
        if not isinstance(f, dict) or len(f) != 1:
            return None
        (name, value), = f.items()
        if name == "exists" and isinstance(value, bool):
            return lambda item: (item is not UNDEFINED) == value
        if name == "prefix":
            return prefix_test(value, False)
        if name == "anything-but" and isinstance(value, dict) and list(value) == ["prefix"]:
            return prefix_test(value["prefix"], True)
        if name == "anything-but" and isinstance(value, (list, str, int)) and not isinstance(value, bool):
            excluded = value if isinstance(value, list) else [value]
            if not all(v is None or isinstance(v, (str, bool, int)) for v in excluded):
                return None
            if not isinstance(value, list):
                return lambda item: item is not UNDEFINED and (
                    any(i != value for i in item) if isinstance(item, list) else item != value
                )
            return lambda item: item is not UNDEFINED and (
                any(i not in value for i in item) if isinstance(item, list) else item not in value
            )
        return None

    def list_test(filters):
        scalars = [f for f in filters if not isinstance(f, dict)]
        tests = [values_test(scalars)] if scalars else []
        tests += [filter_test(f) for f in filters if isinstance(f, dict)]
        if None in tests:
            return None
        if len(tests) == 1:
            return tests[0]
        return lambda item: any(t(item) for t in tests)

    def node_test(node, prefix):
        if not isinstance(node, dict):
            return None
        tests = []
        for key, value in node.items():
            if key == "$or":
                if not isinstance(value, list):
                    return None
                alternatives = [node_test(p, prefix) for p in value]
                if None in alternatives:
                    return None
                tests.append(lambda flat, alternatives=alternatives: any(a(flat) for a in alternatives))
                continue
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                test = node_test(value, path)
                if test is None:
                    return None
                tests.append(test)
            elif isinstance(value, list):
                test = list_test(value)
                if test is None:
                    return None
                tests.append(lambda flat, path=path, test=test: test(flat.get(path, UNDEFINED)))
            else:
                tests.append(lambda flat: False)
        return lambda flat: all(t(flat) for t in tests)

    compiled = node_test(pattern._pattern, "") or generic
    pattern._compiled = (pattern._pattern, compiled)
    return compiled


class _RequestBody:
    """The request's body as the application reads it: at most Content-Length bytes of the
    connection, so neither the application nor werkzeug's drain after a response can read into the
    next request on a kept-alive connection."""

    def __init__(self, rfile, length, continue_to=None):
        self._rfile = rfile
        self._remaining = length
        self._continue_to = continue_to  # "100 Continue" waits in the write buffer until a read

    def _limit(self, size):
        if self._continue_to is not None:
            self._continue_to.flush()
            self._continue_to = None
        if size is None or size < 0 or size > self._remaining:
            return self._remaining
        return size

    def read(self, size=-1):
        data = self._rfile.read(self._limit(size)) if self._remaining else b""
        self._remaining -= len(data)
        return data

    def readline(self, size=-1):
        data = self._rfile.readline(self._limit(size)) if self._remaining else b""
        self._remaining -= len(data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def finish(self):
        """Reads what the application left of the body; False if the connection can't be reused:
        the client still waits for "100 Continue", or the body is too large to discard."""
        if self._remaining and (self._continue_to is not None or self._remaining > 16 * 1024 * 1024):
            return False
        while self._remaining:
            if not self.read(64 * 1024):
                return False
        return True

    def __getattr__(self, name):
        return getattr(self._rfile, name)


class _QueueView:
    """The SQS backend as `send_message` sees it: `get_queue` answers the queue with the given
    `attributes` (all that send reads of them); everything else is the backend's and the queue's."""

    def __init__(self, backend, queue, attributes):
        self._backend = backend
        self._queue = _AttributesOf(queue, attributes)

    def get_queue(self, queue_name):
        return self._queue

    def __getattr__(self, name):
        return getattr(self._backend, name)


class _AttributesOf:
    def __init__(self, queue, attributes):
        self._queue = queue
        self.attributes = attributes

    def __getattr__(self, name):
        return getattr(self._queue, name)


if __name__ == "__main__":
    args = sys.argv[1:]
    install_partner_bus_patches()
    if "--plain" in args:
        args.remove("--plain")
    else:
        install_speed_patches()
    main(args)
