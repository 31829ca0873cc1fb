"""Starts moto in server mode with DynamoDB made safe and fast under concurrency.

moto's TransactWriteItems snapshots every touched table with deepcopy before applying a
transaction and restores the snapshot if a condition fails. That is not safe against concurrent
requests on the server's other threads (it fails with "dictionary changed size during iteration"
or loses a concurrent write), and it costs time in proportion to the whole table. DynamoDB itself
is linearisable per item and its transactions are serialisable, so here:
- every DynamoDB request is serialised (SQS and EventBridge stay concurrent);
- a transaction snapshots only the items it touches, and restores those if it is cancelled.
"""

import copy
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

if __name__ == "__main__":
    main(sys.argv[1:])
