#!/usr/bin/env python3
"""mqtt-conformance adapter (protocol 1) for the Python library paho-mqtt 2.x.

Requests arrive as JSON lines on stdin, events leave as JSON lines on stdout
(see adapters/PROTOCOL.md); diagnostics go to stderr. One paho Client for the
whole process, MQTT 3.1.1, callback API version 2. The network loop is our own
thread calling client.loop() (never loop_start()/loop_forever(), which
reconnect on their own); it runs from a connect until the next disconnect.
Set PAHO_ADAPTER_DEBUG=1 to copy paho's debug log to stderr.
"""
import json
import os
import sys
import threading
import time

import paho.mqtt
import paho.mqtt.client as mqtt

OPERATIONS = ["connect", "publish", "subscribe", "unsubscribe", "disconnect"]
FEATURES = ["qos1", "qos2", "will", "username", "password", "clean_session_0",
            "empty_client_id", "keep_alive", "binary_payload", "strings_with_nul"]
# paho v2 reports a 3.1.1 CONNACK return code as an MQTT 5 reason code; map back by name.
CONNACK_CODES = {"Success": 0, "Unsupported protocol version": 1, "Client identifier not valid": 2,
                 "Server unavailable": 3, "Bad user name or password": 4, "Not authorized": 5}
EVENTS = {"pub": "published", "sub": "subscribed", "unsub": "unsubscribed"}
DEBUG = bool(os.environ.get("PAHO_ADAPTER_DEBUG"))
LOG_NAMES = {mqtt.MQTT_LOG_INFO: "info", mqtt.MQTT_LOG_NOTICE: "notice", mqtt.MQTT_LOG_WARNING: "warning",
             mqtt.MQTT_LOG_ERR: "err", mqtt.MQTT_LOG_DEBUG: "debug"}

_out_lock = threading.Lock()
_quiet = False  # set on exit: nothing more goes to stdout


def emit(**event):
    line = json.dumps(event, separators=(",", ":")) + "\n"  # ASCII-only JSON
    with _out_lock:
        if _quiet:
            return
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass


def answer(event, rid, **fields):
    """An event that answers request `rid` (None: an unsolicited one)."""
    emit(event=event, **({"id": rid} if rid is not None else {}), **fields)


def diag(text):
    try:
        sys.stderr.write("paho-adapter: %s\n" % text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def payload_of(obj):
    """The bytes of a request's payload: payload_hex wins over payload; none is empty."""
    if obj.get("payload_hex") is not None:
        return bytes.fromhex(obj["payload_hex"])
    if obj.get("payload") is not None:
        return obj["payload"].encode("utf-8")
    return b""


class Adapter:
    def __init__(self):
        self.client = None
        self.identity = None      # (client_id, clean_session) the client was made with
        # Every call into paho (the loop thread's included) holds this lock, so paho's callbacks,
        # which run inside those calls, never race with each other or with a request.
        self.lock = threading.Lock()
        self.pending = {}         # (kind, mid) -> request id
        self.early = {}           # (kind, mid) -> fields, when paho called back before the call returned
        self.connect_id = None    # connect request waiting for its CONNACK
        self.disconnect_id = None  # disconnect request waiting for on_disconnect
        self.looping = False      # the loop thread drives paho (from connect to on_disconnect)
        self.live = False         # a connection is open (or being opened) and not yet reported lost
        self.wake = threading.Event()
        self.last_log = ""
        threading.Thread(target=self.run_loop, name="paho-loop", daemon=True).start()

    # ---- network loop ----
    def run_loop(self):
        while True:
            self.wake.wait()
            with self.lock:
                if not self.looping:
                    self.wake.clear()
                    continue
                try:
                    rc = self.client.loop(timeout=0.05)
                except Exception as exc:  # noqa: BLE001 - report, never die
                    rc = None
                    diag("loop raised %r" % exc)
                    time.sleep(0.05)
                if rc != mqtt.MQTT_ERR_SUCCESS and self.client.socket() is None and self.looping:
                    self.looping = False  # the socket is gone but paho did not call on_disconnect
                    if self.live:
                        self.lost("loop ended: %s" % (mqtt.error_string(rc) if rc is not None else "exception"))
            time.sleep(0.001)  # let the request thread take the lock

    # ---- mid -> request id (paho may call back before publish() etc. return the mid) ----
    def register(self, kind, mid, rid):
        fields = self.early.pop((kind, mid), None)
        if fields is None:
            self.pending[(kind, mid)] = rid
        else:
            emit(event=EVENTS[kind], id=rid, **fields)

    def complete(self, kind, key, **fields):
        rid = self.pending.pop((kind, key), None)
        if rid is None:
            self.early[(kind, key)] = fields
        else:
            emit(event=EVENTS[kind], id=rid, **fields)

    # ---- paho callbacks (VERSION2 signatures) ----
    def on_connect(self, client, userdata, flags, reason_code, properties):
        rid, self.connect_id = self.connect_id, None
        code = CONNACK_CODES.get(reason_code.getName())
        if code is None:  # 6..255: paho only says "Unspecified error", then closes
            answer("error", rid, message="CONNACK with a return code paho does not know (paho: %s)" % reason_code)
        else:
            answer("connack", rid, return_code=code, session_present=bool(flags.session_present))

    def on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.looping = False
        name = reason_code.getName()
        if not self.live:  # paho calls it twice on a keep alive timeout (_check_keepalive, loop_misc)
            emit(event="log", message="paho called on_disconnect again (%s)" % name)
            return
        self.live = False
        rid, self.disconnect_id = self.disconnect_id, None
        if rid is not None:
            emit(event="disconnected", id=rid, reason="requested (paho: %s)" % name)
            return
        self.lost("connection lost (paho: %s%s)" % (name, "; " + self.last_log if self.last_log else ""),
                  protocol_error=(name == "Protocol error"))

    def lost(self, reason, protocol_error=False):
        self.live = False
        rid, self.connect_id = self.connect_id, None
        if rid is not None:  # e.g. CONNACK 1, or 2 for an empty client id: paho closes without on_connect
            answer("error", rid, message="closed without on_connect: " + reason)
        elif protocol_error:
            answer("error", None, message="protocol error: " + reason)
        emit(event="disconnected", reason=reason)

    def on_publish(self, client, userdata, mid, reason_code, properties):
        self.complete("pub", mid, mid=mid)

    def on_subscribe(self, client, userdata, mid, reason_code_list, properties):
        self.complete("sub", mid, granted=[int(rc.value) for rc in reason_code_list])

    def on_unsubscribe(self, client, userdata, mid, reason_code_list, properties):
        self.complete("unsub", mid)

    def on_message(self, client, userdata, msg):
        event = {"event": "message"}
        try:
            event["topic"] = msg.topic
        except UnicodeDecodeError as exc:  # paho raises on a topic that is not UTF-8
            event["topic"] = msg._topic.decode("utf-8", "backslashreplace")
            event["topic_hex"] = msg._topic.hex()
            emit(event="log", message="paho: msg.topic raised %s" % exc)
        try:
            event["payload"] = bytes(msg.payload).decode("utf-8")
        except UnicodeDecodeError:
            pass
        event.update(payload_hex=bytes(msg.payload).hex(), qos=msg.qos, retain=bool(msg.retain),
                     dup=bool(msg.dup))
        emit(**event)

    def on_log(self, client, userdata, level, text):
        if level == mqtt.MQTT_LOG_ERR or "malformed" in text:
            self.last_log = text
        if DEBUG or level in (mqtt.MQTT_LOG_ERR, mqtt.MQTT_LOG_WARNING):
            diag("paho[%s]: %s" % (LOG_NAMES.get(level, level), text))

    # ---- requests (called with self.lock held) ----
    def make_client(self, client_id, clean):
        if self.client is None:
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                      clean_session=clean, protocol=mqtt.MQTTv311,
                                      reconnect_on_failure=False)
            self.client.suppress_exceptions = True  # a failing callback must not break paho's state
        else:  # another identity: same object, fresh state (paho's reinitialise)
            self.identity = None
            self.client.reinitialise(client_id, clean)
            self.client._reconnect_on_failure = False  # reinitialise() resets it to True
        for name in ("connect", "disconnect", "publish", "subscribe", "unsubscribe", "message", "log"):
            setattr(self.client, "on_" + name, getattr(self, "on_" + name))
        self.pending.clear()
        self.early.clear()
        self.identity = (client_id, clean)

    def op_connect(self, req):
        if req.get("tls"):
            raise ValueError("TLS is not supported by this adapter")
        host, port, keep_alive = req["host"], int(req["port"]), int(req["keep_alive"])
        identity = (req["client_id"], bool(req["clean_session"]))
        again = self.client is not None and identity == self.identity
        if not again:
            self.make_client(*identity)
        c = self.client
        c.username_pw_set(req.get("username"), req.get("password"))
        will = req.get("will")
        if will:
            c.will_set(will["topic"], payload_of(will), int(will.get("qos", 0)), bool(will.get("retain", False)))
        else:
            c.will_clear()
        if req.get("timeout") and float(req["timeout"]) != c.connect_timeout:
            try:
                c.connect_timeout = float(req["timeout"])
            except RuntimeError as exc:  # paho refuses it once a connection was made
                diag("connect timeout stays %s: %s" % (c.connect_timeout, exc))
        self.last_log = ""
        self.connect_id, self.live = req["id"], True
        try:
            if again:  # keep paho's session state: messages in flight are re-sent
                if (c.host, c.port, c.keepalive) != (host, port, keep_alive):
                    c.connect_async(host, port, keep_alive)
                rc = c.reconnect()
            else:
                rc = c.connect(host, port, keep_alive)
        except BaseException:
            self.connect_id, self.live = None, False
            raise
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self.connect_id, self.live = None, False
            raise RuntimeError("connect: " + mqtt.error_string(rc))
        self.looping = True
        self.wake.set()

    def need_client(self):
        if self.client is None:
            raise RuntimeError("not connected (no connect yet)")
        return self.client

    def op_publish(self, req):
        qos = int(req["qos"])
        info = self.need_client().publish(req["topic"], payload_of(req), qos, bool(req["retain"]))
        if info.rc == mqtt.MQTT_ERR_NO_CONN and qos > 0:
            emit(event="log", message="publish %d queued by paho while not connected (mid %d)" % (req["id"], info.mid))
        elif info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError("publish: " + mqtt.error_string(info.rc))
        self.register("pub", info.mid, req["id"])

    def op_subscribe(self, req):
        topics = [(t["filter"], int(t["qos"])) for t in req["topics"]]
        rc, mid = self.need_client().subscribe(topics)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError("subscribe: " + mqtt.error_string(rc))
        self.register("sub", mid, req["id"])

    def op_unsubscribe(self, req):
        rc, mid = self.need_client().unsubscribe(list(req["filters"]))
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError("unsubscribe: " + mqtt.error_string(rc))
        self.register("unsub", mid, req["id"])

    def op_disconnect(self, req):
        self.disconnect_id = req["id"]
        rc = self.need_client().disconnect()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            if self.disconnect_id is not None:  # on_disconnect did not answer
                self.disconnect_id = None
                raise RuntimeError("disconnect: " + mqtt.error_string(rc))

    def shutdown(self):
        global _quiet
        with _out_lock:
            _quiet = True
        with self.lock:
            if self.client is not None and self.looping:
                try:
                    self.client.disconnect()
                except Exception:  # noqa: BLE001
                    pass
            self.looping = False


def main():
    adapter = Adapter()
    emit(event="hello", protocol=1, library="paho-mqtt", version=paho.mqtt.__version__,
         language="python", operations=OPERATIONS, features=FEATURES)
    for raw in sys.stdin.buffer:
        rid = None
        try:
            if not raw.strip():
                continue
            req = json.loads(raw.decode("utf-8"))
            if not isinstance(req, dict):
                raise ValueError("request is not a JSON object")
            rid = req.get("id") if isinstance(req.get("id"), int) else None
            op = req.get("op")
            if op == "exit":
                break
            handler = getattr(adapter, "op_%s" % op, None) if op in OPERATIONS else None
            if handler is None:
                if rid is None:
                    raise ValueError("unknown op %r without an id" % (op,))
                emit(event="unsupported", id=rid, op=str(op))
                continue
            if rid is None:
                raise ValueError("request without an integer id")
            with adapter.lock:
                handler(req)
        except KeyError as exc:
            answer("error", rid, message="bad request: missing field %s" % exc)
        except Exception as exc:  # noqa: BLE001 - every failure is an answer
            answer("error", rid, message="%s: %s" % (type(exc).__name__, exc))
    adapter.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
