/* mqtt-conformance adapter (protocol 1, see adapters/PROTOCOL.md) for the C
 * library libmosquitto. JSON-line requests on stdin, JSON-line events on
 * stdout (built with cJSON), diagnostics on stderr.
 *
 * One struct mosquitto for the whole process, driven by hand on one thread:
 * poll() over stdin and mosquitto_socket(), then mosquitto_loop_read/write/
 * misc. No mosquitto_loop_start/loop_forever, so the library never
 * reconnects on its own; a second `connect` reuses the object with
 * mosquitto_reconnect_async() (mosquitto_reconnect() without blocking in
 * connect(2)) and libmosquitto re-sends what is still in flight. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>

#define MAX_LINE (1024 * 1024)

static struct mosquitto *mq;          /* the one client object */
static char *mq_id;                   /* client id and clean session it was made with */
static bool mq_clean;
static char *last_host;               /* host/port/keep alive of the last successful connect */
static int last_port = -1, last_keepalive = -1;
static long long connect_id = -1;     /* request waiting for its CONNACK */
static long long disconnect_id = -1;  /* request waiting for the end of the connection */
static double connack_deadline;
static long long mid_req[65536];      /* request id per libmosquitto mid, -1: none */
static char mid_kind[65536];          /* 'p'ublish, 's'ubscribe, 'u'nsubscribe */
static bool in_publish, in_publish_done; /* QoS 0 completes inside mosquitto_publish() */
static long long in_publish_id;
static bool quiet;                    /* after `exit`: no more events */
static int in_fd;                     /* the requests (stdin, moved off fd 0) */
static char *lbuf;                    /* the request line being read */
static size_t llen;
static bool overlong;                 /* skipping the rest of a line over MAX_LINE */
static long long overlong_id;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* length of the valid UTF-8 sequence at s (no overlongs, surrogates, > U+10FFFF), 0 if invalid */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0], cp, min;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static bool utf8_valid(const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0, l; i < n; i += l)
        if (!(l = utf8_seq(s + i, n - i))) return false;
    return true;
}

/* add a string field; bytes that are not UTF-8 become '?' so the line stays valid */
static void add_text(cJSON *o, const char *key, const char *s) {
    size_t n = strlen(s);
    if (utf8_valid(s, n)) { cJSON_AddStringToObject(o, key, s); return; }
    char *t = malloc(n + 1);
    if (!t) return;
    for (size_t i = 0, l; i < n; i += l) {
        l = utf8_seq((const unsigned char *)s + i, n - i);
        if (l) memcpy(t + i, s + i, l); else { t[i] = '?'; l = 1; }
    }
    t[n] = '\0';
    cJSON_AddStringToObject(o, key, t);
    free(t);
}

static void emit(cJSON *ev) {
    char *s = quiet ? NULL : cJSON_PrintUnformatted(ev);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        if (fflush(stdout) != 0) { perror("adapter: stdout"); exit(1); }
        free(s);
    }
    cJSON_Delete(ev);
}

static cJSON *event(const char *name, long long id) {
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", name);
    if (id >= 0) cJSON_AddNumberToObject(ev, "id", (double)id);
    return ev;
}

/* an `error` or `log` event with a formatted message */
static void say(const char *name, long long id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(const char *name, long long id, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *ev = event(name, id);
    add_text(ev, "message", msg);
    emit(ev);
}
#define emit_error(id, ...) say("error", id, __VA_ARGS__)

static char *to_hex(const unsigned char *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    char *h = malloc(2 * n + 1);
    if (!h) return NULL;
    for (size_t i = 0; i < n; i++) { h[2 * i] = digits[p[i] >> 4]; h[2 * i + 1] = digits[p[i] & 15]; }
    h[2 * n] = '\0';
    return h;
}

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : (c = tolower(c)) >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* JSON field helpers */
#define get cJSON_GetObjectItemCaseSensitive
static const char *jstr(const cJSON *o, const char *k) { return cJSON_IsString(get(o, k)) ? get(o, k)->valuestring : NULL; }
static int jint(const cJSON *o, const char *k, int def) { return cJSON_IsNumber(get(o, k)) ? get(o, k)->valueint : def; }
static bool jbool(const cJSON *o, const char *k, bool def) { return cJSON_IsBool(get(o, k)) ? cJSON_IsTrue(get(o, k)) : def; }

/* the payload of a publish or a will: `payload_hex`, else `payload` (text), else empty.
 * Returns false on a bad payload_hex. *buf is malloc'd (or NULL) and freed by the caller. */
static bool get_payload(const cJSON *o, unsigned char **buf, size_t *len) {
    const char *hex = jstr(o, "payload_hex"), *text = jstr(o, "payload");
    *buf = NULL;
    *len = 0;
    if (hex) {
        size_t n = strlen(hex);
        if (n % 2) return false;
        if (!(*buf = malloc(n / 2 + 1))) return false;
        for (size_t i = 0; i < n / 2; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) { free(*buf); *buf = NULL; return false; }
            (*buf)[i] = (unsigned char)(hi << 4 | lo);
        }
        *len = n / 2;
    } else if (text) {
        *len = strlen(text);
        *buf = (unsigned char *)strdup(text);
    }
    return true;
}

static void track(int mid, char kind, long long id) { mid_req[mid & 0xFFFF] = id; mid_kind[mid & 0xFFFF] = kind; }

/* the request waiting for mid (of that kind), forgotten; -1 if none */
static long long take(int mid, char kind) {
    long long id = mid_req[mid & 0xFFFF];
    if (id < 0 || mid_kind[mid & 0xFFFF] != kind) return -1;
    mid_req[mid & 0xFFFF] = -1;
    return id;
}

/* ---- libmosquitto callbacks -> events ---- */

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags) {
    (void)m; (void)obj;
    cJSON *ev = event("connack", connect_id);
    cJSON_AddNumberToObject(ev, "return_code", rc);
    cJSON_AddBoolToObject(ev, "session_present", (flags & 1) != 0);
    emit(ev);
    connect_id = -1;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc) {
    (void)m; (void)obj;
    /* 2.0.11's mosquitto_strerror() has no text for MOSQ_ERR_KEEPALIVE */
    const char *reason = rc == MOSQ_ERR_KEEPALIVE ? "Keep alive timeout (no PINGRESP)." : mosquitto_strerror(rc);
    if (connect_id >= 0) {
        emit_error(connect_id, "connection closed before CONNACK: %s", reason);
        connect_id = -1;
    } else if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_LOST && rc != MOSQ_ERR_KEEPALIVE &&
               rc != MOSQ_ERR_CONN_REFUSED && rc != MOSQ_ERR_ERRNO && rc != MOSQ_ERR_NO_CONN) {
        emit_error(-1, "%s", reason); /* the library gave up on the server: protocol error, malformed packet */
    }
    /* libmosquitto does not re-send SUBSCRIBE/UNSUBSCRIBE: those requests are over */
    for (int i = 0; i < 65536; i++)
        if (mid_req[i] >= 0 && mid_kind[i] != 'p') {
            emit_error(mid_req[i], "connection closed before %s", mid_kind[i] == 's' ? "SUBACK" : "UNSUBACK");
            mid_req[i] = -1;
        }
    cJSON *ev = event("disconnected", disconnect_id);
    add_text(ev, "reason", reason);
    emit(ev);
    disconnect_id = -1;
}

static void on_publish(struct mosquitto *m, void *obj, int mid) {
    (void)m; (void)obj;
    long long id = take(mid, 'p');
    if (id < 0 && in_publish) { id = in_publish_id; in_publish_done = true; }
    if (id < 0) { fprintf(stderr, "adapter: publish completed for unknown mid %d\n", mid); return; }
    cJSON *ev = event("published", id);
    cJSON_AddNumberToObject(ev, "mid", mid);
    emit(ev);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted) {
    (void)m; (void)obj;
    cJSON *ev = event("subscribed", take(mid, 's'));
    cJSON *g = cJSON_AddArrayToObject(ev, "granted");
    for (int i = 0; i < count; i++) cJSON_AddItemToArray(g, cJSON_CreateNumber(granted[i]));
    emit(ev);
}

static void on_unsubscribe(struct mosquitto *m, void *obj, int mid) {
    (void)m; (void)obj;
    emit(event("unsubscribed", take(mid, 'u')));
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg) {
    (void)m; (void)obj;
    size_t n = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    const unsigned char *p = n ? msg->payload : (const unsigned char *)"";
    cJSON *ev = event("message", -1);
    add_text(ev, "topic", msg->topic ? msg->topic : "");
    /* cJSON strings end at NUL: a payload with a NUL byte only goes out as hex */
    if (utf8_valid(p, n) && !memchr(p, 0, n)) {
        char *t = malloc(n + 1);
        if (t) { memcpy(t, p, n); t[n] = '\0'; cJSON_AddStringToObject(ev, "payload", t); free(t); }
    }
    char *h = to_hex(p, n);
    cJSON_AddStringToObject(ev, "payload_hex", h ? h : "");
    free(h);
    cJSON_AddNumberToObject(ev, "qos", msg->qos);
    cJSON_AddBoolToObject(ev, "retain", msg->retain);
    emit(ev);
}

static void on_log(struct mosquitto *m, void *obj, int level, const char *str) {
    (void)m; (void)obj;
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING | MOSQ_LOG_NOTICE | MOSQ_LOG_INFO)) say("log", -1, "%s", str);
    else fprintf(stderr, "libmosquitto: %s\n", str); /* per-packet debug lines */
}

static void setup(void) {
    mosquitto_int_option(mq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_with_flags_callback_set(mq, on_connect);
    mosquitto_disconnect_callback_set(mq, on_disconnect);
    mosquitto_publish_callback_set(mq, on_publish);
    mosquitto_subscribe_callback_set(mq, on_subscribe);
    mosquitto_unsubscribe_callback_set(mq, on_unsubscribe);
    mosquitto_message_callback_set(mq, on_message);
    mosquitto_log_callback_set(mq, on_log);
}

static bool connected(void) { return mq && mosquitto_socket(mq) >= 0; }

/* ---- requests ---- */

static void do_connect(const cJSON *r, long long id) {
    const char *host = jstr(r, "host") ? jstr(r, "host") : "localhost";
    const char *cid = jstr(r, "client_id");
    int port = jint(r, "port", 1883), keepalive = jint(r, "keep_alive", 60), rc;
    bool clean = jbool(r, "clean_session", true);
    const cJSON *tls = get(r, "tls"), *will = get(r, "will"), *timeout = get(r, "timeout");

    if (tls && !cJSON_IsNull(tls)) { emit_error(id, "TLS is not supported by this adapter"); return; }
    if (connected() || connect_id >= 0) { emit_error(id, "already connected (disconnect first)"); return; }
    bool same = mq && mq_clean == clean && ((!cid && !mq_id) || (cid && mq_id && !strcmp(cid, mq_id)));
    if (mq && !same) {
        /* libmosquitto fixes client id and clean session per object: reset it */
        say("log", -1, "client id or clean_session changed: mosquitto_reinitialise (local session state reset)");
        if ((rc = mosquitto_reinitialise(mq, cid, clean, NULL)) != MOSQ_ERR_SUCCESS) {
            mosquitto_destroy(mq);
            mq = NULL;
            emit_error(id, "mosquitto_reinitialise: %s%s", mosquitto_strerror(rc),
                       cid && !*cid ? " (libmosquitto refuses an empty client id)" : "");
            return;
        }
        free(last_host);
        last_host = NULL;
    } else if (!mq && !(mq = mosquitto_new(cid, clean, NULL))) {
        emit_error(id, "mosquitto_new: %s%s", strerror(errno),
                   cid && !*cid ? " (libmosquitto refuses an empty client id)" : "");
        return;
    }
    if (!same) {
        setup();
        free(mq_id);
        mq_id = cid ? strdup(cid) : NULL;
        mq_clean = clean;
    }

    if (cJSON_IsObject(will)) {
        unsigned char *buf;
        size_t len;
        const char *topic = jstr(will, "topic");
        if (!get_payload(will, &buf, &len)) { emit_error(id, "will: bad payload_hex"); return; }
        rc = mosquitto_will_set(mq, topic ? topic : "", (int)len, buf, jint(will, "qos", 0), jbool(will, "retain", false));
        free(buf);
        if (rc) { emit_error(id, "mosquitto_will_set: %s", mosquitto_strerror(rc)); return; }
    } else {
        mosquitto_will_clear(mq);
    }
    if ((rc = mosquitto_username_pw_set(mq, jstr(r, "username"), jstr(r, "password")))) {
        emit_error(id, "mosquitto_username_pw_set: %s", mosquitto_strerror(rc));
        return;
    }

    connect_id = id;
    connack_deadline = now() + (cJSON_IsNumber(timeout) && timeout->valuedouble > 0 ? timeout->valuedouble : 10.0);
    bool again = last_host && !strcmp(last_host, host) && last_port == port && last_keepalive == keepalive;
    rc = again ? mosquitto_reconnect_async(mq) : mosquitto_connect_async(mq, host, port, keepalive);
    if (rc != MOSQ_ERR_SUCCESS) {
        const char *e = mosquitto_strerror(rc);
        if (connect_id >= 0) emit_error(connect_id, "%s: %s", again ? "mosquitto_reconnect_async" : "mosquitto_connect_async", e);
        connect_id = -1;
        return;
    }
    if (!again) {
        free(last_host);
        last_host = strdup(host);
        last_port = port;
        last_keepalive = keepalive;
    }
}

static void do_publish(const cJSON *r, long long id) {
    const char *topic = jstr(r, "topic");
    unsigned char *buf;
    size_t len;
    int mid = 0;
    if (!mq) { emit_error(id, "not connected"); return; }
    if (!topic) { emit_error(id, "publish without a topic"); return; }
    if (!get_payload(r, &buf, &len)) { emit_error(id, "bad payload_hex"); return; }
    in_publish = true;
    in_publish_done = false;
    in_publish_id = id;
    int rc = mosquitto_publish(mq, &mid, topic, (int)len, buf, jint(r, "qos", 0), jbool(r, "retain", false));
    in_publish = false;
    free(buf);
    if (rc == MOSQ_ERR_NO_CONN && jint(r, "qos", 0) > 0) {
        /* libmosquitto says "not connected" but keeps a QoS 1/2 message queued and
         * sends it on the next connect: the flow completes then (published) */
        say("log", -1, "mosquitto_publish: not connected; message queued for the next connection");
        track(mid, 'p', id);
    } else if (rc) {
        emit_error(id, "mosquitto_publish: %s", mosquitto_strerror(rc));
    } else if (!in_publish_done) {
        track(mid, 'p', id);
    }
}

/* subscribe (topics: [{filter, qos}]) or unsubscribe (filters: [...]), one packet each */
static void do_sub(const cJSON *r, long long id, bool sub) {
    const cJSON *list = get(r, sub ? "topics" : "filters"), *item;
    int n = cJSON_GetArraySize(list), qos = 0, i = 0, mid = 0, rc;
    if (!mq) { emit_error(id, "not connected"); return; }
    if (!cJSON_IsArray(list)) { emit_error(id, "%s without a list", sub ? "subscribe" : "unsubscribe"); return; }
    char **filters = calloc(n ? (size_t)n : 1, sizeof *filters);
    if (!filters) { emit_error(id, "out of memory"); return; }
    cJSON_ArrayForEach(item, list) {
        const char *f = sub ? jstr(item, "filter") : (cJSON_IsString(item) ? item->valuestring : NULL);
        int q = sub ? jint(item, "qos", 0) : 0;
        if (!f) { emit_error(id, "entry %d is not a %s", i, sub ? "{filter, qos}" : "string"); goto out; }
        if (i > 0 && q != qos) {
            emit_error(id, "libmosquitto asks one QoS for all filters of a SUBSCRIBE (mosquitto_subscribe_multiple)");
            goto out;
        }
        qos = q;
        filters[i++] = (char *)f; /* libmosquitto takes char *const * */
    }
    rc = sub ? mosquitto_subscribe_multiple(mq, &mid, n, filters, qos, 0, NULL)
             : mosquitto_unsubscribe_multiple(mq, &mid, n, filters, NULL);
    if (rc) emit_error(id, "%s: %s", sub ? "mosquitto_subscribe_multiple" : "mosquitto_unsubscribe_multiple", mosquitto_strerror(rc));
    else track(mid, sub ? 's' : 'u', id);
out:
    free(filters);
}

static void do_disconnect(long long id) {
    if (!connected()) { emit_error(id, "not connected"); return; }
    disconnect_id = id;
    int rc = mosquitto_disconnect(mq); /* the callback may run right here */
    if (rc) { disconnect_id = -1; emit_error(id, "mosquitto_disconnect: %s", mosquitto_strerror(rc)); }
}

static void finish(int code) {
    quiet = true;
    if (mq) mosquitto_destroy(mq);
    mosquitto_lib_cleanup();
    free(mq_id);
    free(last_host);
    free(lbuf);
    exit(code);
}

/* the top-level "id" of a line that cannot be parsed (a rough scan); -1 if none */
static long long scan_id(const char *s, size_t n) {
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            size_t start = ++i;
            while (i < n && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
            if (i >= n) return -1;
            if (depth != 1 || i - start != 2 || memcmp(s + start, "id", 2)) continue;
            size_t j = i + 1;
            while (j < n && isspace((unsigned char)s[j])) j++;
            if (j >= n || s[j] != ':') continue;
            for (j++; j < n && isspace((unsigned char)s[j]); j++) {}
            long long v = -1;
            for (int k = 0; j < n && isdigit((unsigned char)s[j]) && k < 15; j++, k++) v = (v < 0 ? 0 : v * 10) + (s[j] - '0');
            return v;
        }
        if (s[i] == '{' || s[i] == '[') depth++;
        else if (s[i] == '}' || s[i] == ']') depth--;
    }
    return -1;
}

static void handle_line(char *s, size_t n) {
    size_t k = 0;
    while (k < n && isspace((unsigned char)s[k])) k++;
    if (k == n) return;
    cJSON *r = cJSON_ParseWithLengthOpts(s, n + 1, NULL, true); /* s[n] is the NUL */
    if (!cJSON_IsObject(r)) {
        emit_error(scan_id(s, n), "request is not a JSON object");
        cJSON_Delete(r);
        return;
    }
    const cJSON *idv = get(r, "id");
    long long id = cJSON_IsNumber(idv) && idv->valuedouble >= 0 ? (long long)idv->valuedouble : -1;
    const char *op = jstr(r, "op");
    if (!op) emit_error(id, "request without \"op\"");
    else if (!strcmp(op, "connect")) do_connect(r, id);
    else if (!strcmp(op, "publish")) do_publish(r, id);
    else if (!strcmp(op, "subscribe")) do_sub(r, id, true);
    else if (!strcmp(op, "unsubscribe")) do_sub(r, id, false);
    else if (!strcmp(op, "disconnect")) do_disconnect(id);
    else if (!strcmp(op, "exit")) {
        quiet = true;
        if (connected()) mosquitto_disconnect(mq);
        cJSON_Delete(r);
        finish(0);
    } else if (id < 0) {
        emit_error(-1, "unsupported op without an id");
    } else {
        cJSON *ev = event("unsupported", id);
        add_text(ev, "op", op);
        emit(ev);
    }
    cJSON_Delete(r);
}

/* split stdin into lines; a line over MAX_LINE is answered `error` and skipped */
static void feed(const char *p, size_t n) {
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n;
        if (!overlong && llen + seg > MAX_LINE) {
            memcpy(lbuf + llen, p, MAX_LINE - llen);
            overlong = true;
            overlong_id = scan_id(lbuf, MAX_LINE);
        } else if (!overlong) {
            memcpy(lbuf + llen, p, seg);
            llen += seg;
        }
        if (!nl) return;
        if (overlong) {
            emit_error(overlong_id, "request line longer than 1 MiB");
        } else {
            if (llen && lbuf[llen - 1] == '\r') llen--;
            lbuf[llen] = '\0';
            handle_line(lbuf, llen);
        }
        overlong = false;
        llen = 0;
        p = nl + 1;
        n -= seg + 1;
    }
}

int main(void) {
    static char chunk[65536];
    int major, minor, rev;
    char version[32];

    /* libmosquitto 2.0.11 closes fd 0 when mosquitto_new()/mosquitto_reinitialise()
     * refuse a client id (e.g. ""): read requests from a copy, leave /dev/null on 0 */
    int devnull = open("/dev/null", O_RDONLY);
    if ((in_fd = dup(0)) < 0 || devnull < 0 || dup2(devnull, 0) < 0) { perror("adapter: stdin"); return 1; }
    close(devnull);
    mosquitto_lib_init();
    for (int i = 0; i < 65536; i++) mid_req[i] = -1;
    if (!(lbuf = malloc(MAX_LINE + 1))) { perror("adapter"); return 1; }

    mosquitto_lib_version(&major, &minor, &rev);
    snprintf(version, sizeof version, "%d.%d.%d", major, minor, rev);
    static const char *ops[] = {"connect", "publish", "subscribe", "unsubscribe", "disconnect"};
    static const char *features[] = {"qos1", "qos2", "will", "username", "password",
                                     "clean_session_0", "keep_alive", "binary_payload"};
    cJSON *hello = event("hello", -1);
    cJSON_AddNumberToObject(hello, "protocol", 1);
    cJSON_AddStringToObject(hello, "library", "libmosquitto");
    cJSON_AddStringToObject(hello, "version", version);
    cJSON_AddStringToObject(hello, "language", "c");
    cJSON_AddItemToObject(hello, "operations", cJSON_CreateStringArray(ops, 5));
    cJSON_AddItemToObject(hello, "features", cJSON_CreateStringArray(features, 8));
    emit(hello);

    for (;;) {
        int sock = mq ? mosquitto_socket(mq) : -1;
        struct pollfd pf[2] = {{in_fd, POLLIN, 0}, {sock, POLLIN, 0}};
        if (sock >= 0 && mosquitto_want_write(mq)) pf[1].events |= POLLOUT;
        int ready = poll(pf, 2, 100); /* poll ignores fd -1; the timeout paces keep alive */
        if (ready < 0 && errno != EINTR) { perror("adapter: poll"); finish(1); }
        if (ready > 0 && sock >= 0 && mosquitto_socket(mq) == sock) {
            if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) mosquitto_loop_read(mq, 1);
            if ((pf[1].revents & POLLOUT) && mosquitto_socket(mq) == sock) mosquitto_loop_write(mq, 1);
        }
        if (connected()) mosquitto_loop_misc(mq);
        if (connect_id >= 0 && now() > connack_deadline) {
            emit_error(connect_id, "no CONNACK within the connect timeout");
            connect_id = -1;
        }
        if (ready > 0 && (pf[0].revents & POLLNVAL)) finish(1);
        if (ready > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t got = read(in_fd, chunk, sizeof chunk);
            if (got == 0) finish(0); /* EOF: the suite is gone */
            if (got < 0 && errno != EINTR && errno != EAGAIN) { perror("adapter: stdin"); finish(1); }
            if (got > 0) feed(chunk, (size_t)got);
        }
    }
}
