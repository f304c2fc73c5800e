/* The compiled scanner of the Claude Code fast path (`claude_fast`).
 *
 * `scan(block, lineno, out)` reads the complete lines of `block` (bytes ending at a line end, or at the file's
 * end) and does what the pure-Python loop of `claude_fast` does per line: it decodes the fields that
 * `claude_records.Line` declares, with the same types, and appends what the merge needs to the lists of `out`.
 * It validates all of each line as the Python path does (JSON syntax, UTF-8, the declared types), skips the
 * rest without building anything, and gives up (returns None) on anything it is not sure of: a malformed line,
 * a value of another type, an escaped string where a value is read, an escaped surrogate anywhere, a field
 * repeated in one object, nesting deeper than MAX_DEPTH. On None the caller reads the file with the reference
 * path, which explains every skip; so this scanner may be stricter than the Python fast path, never looser.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && !defined(COSTSCOPE_NO_SIMD)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 200
#define MAX_COUNT (((int64_t)1) << 40) /* `claude_records.Count` */
#define MAX_DIGITS 200                  /* longer integer parts (and exponents past 99) give up: no overflow */

enum { OK = 0, GIVE_UP = 1, FAILED = 2 }; /* FAILED: a Python exception is set */

typedef const unsigned char *Ptr;

typedef struct {
    Ptr p;
    Py_ssize_t n;
    int is_str; /* 0: absent, null or not a string */
} Str;

typedef struct {
    Str type, id, name, subagent_type, tool_use_id;
    int input_is_object;
} Block;

typedef struct {
    Str type, request_id, session_id, agent_id, timestamp, parent_tool_use_id;
    int sidechain; /* -1: absent or null */
    int has_cost;
    double cost;
    /* message */
    int message_is_object;
    Str message_id, model;
    int has_usage;
    int64_t counts[4]; /* input, output, cache read, cache write */
    int has_split, has_5m, has_1h;
    int64_t split_5m, split_1h;
    Str tier;
    int content_is_list;
    Py_ssize_t blocks;
    /* data (progress) */
    int data_is_object;
    Str data_type, data_agent_id;
    int data_message_is_object;
    Str data_message_type;
    int call_is_object, call_usage_is_object;
    /* toolUseResult */
    int result_is_object;
    Str result_agent_id;
} Line;

typedef struct {
    Ptr s, end;
    int depth;
    Block *blocks;
    Py_ssize_t block_capacity;
} Parser;

/* ---- JSON syntax ---- */

static inline void skip_ws(Parser *P) {
    while (P->s < P->end && (*P->s == ' ' || *P->s == '\t' || *P->s == '\n' || *P->s == '\r')) P->s++;
}

static inline uint64_t load8(Ptr p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define HAS_ZERO(v) (((v) - ONES) & ~(v) & HIGHS)

/* The number written by `width` ASCII digits at `p`. */
static inline int64_t digits(const char *p, int width) {
    int64_t v = 0;
    for (int i = 0; i < width; i++) v = v * 10 + (p[i] - '0');
    return v;
}

static int hex4(Ptr p, unsigned *value) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v << 4 | d;
    }
    *value = v;
    return 1;
}

/* The first byte at or after `s` that a string scan must look at: a quote, a backslash, a control character or a
 * non-ASCII byte (or `end`). 16 bytes at a time with SSE2, else 8 with word arithmetic. */
static inline Ptr plain_run(Ptr s, Ptr end) {
#if defined(__SSE2__) && !defined(COSTSCOPE_NO_SIMD)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - s >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)s);
        /* signed: bytes >= 0x80 are negative, so below 0x20 too */
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                       _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(special);
        if (mask) return s + __builtin_ctz((unsigned)mask);
        s += 16;
    }
#endif
    while (end - s >= 8) {
        uint64_t v = load8(s);
        /* the lowest flagged byte is exact: a false flag only ever follows a true one */
        uint64_t mask = HAS_ZERO(v ^ (ONES * '"')) | HAS_ZERO(v ^ (ONES * '\\')) | (((v - ONES * 0x20) | v) & HIGHS);
        if (mask) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return s + (__builtin_ctzll(mask) >> 3);
#else
            return s;
#endif
        }
        s += 8;
    }
    return s;
}

/* One UTF-8 sequence starting at a byte >= 0x80, as Python's strict decoder takes it; returns its length or 0. */
static int utf8_sequence(Ptr p, Ptr end) {
    unsigned c = p[0];
    Py_ssize_t left = end - p;
    if (c >= 0xC2 && c <= 0xDF) return left >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[2] & 0xC0) != 0x80) return 0;
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* A string at its opening quote; `out` gets its contents when it holds no escape (else is_str stays 0 and
 * `*escaped` is set). */
static int string(Parser *P, Str *out, int *escaped) {
    Ptr s = P->s + 1, end = P->end, start = s;
    int has_escape = 0;
    for (;;) {
        s = plain_run(s, end);
        if (s >= end) return GIVE_UP;
        unsigned c = *s;
        if (c == '"') break;
        if (c == '\\') {
            has_escape = 1;
            if (end - s < 2) return GIVE_UP;
            unsigned e = s[1];
            if (e == 'u') {
                unsigned code;
                if (end - s < 6 || !hex4(s + 2, &code)) return GIVE_UP;
                if (code >= 0xD800 && code <= 0xDFFF) return GIVE_UP; /* surrogates: left to the reference */
                s += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                s += 2;
            } else {
                return GIVE_UP;
            }
        } else if (c < 0x20) {
            return GIVE_UP;
        } else if (c >= 0x80) {
            int n = utf8_sequence(s, end);
            if (!n) return GIVE_UP;
            s += n;
        } else {
            s++;
        }
    }
    if (out != NULL) {
        out->p = start;
        out->n = s - start;
        out->is_str = !has_escape;
    }
    if (escaped != NULL) *escaped = has_escape;
    P->s = s + 1;
    return OK;
}

/* A number; `*is_integer` tells whether it had neither fraction nor exponent. */
static int number(Parser *P, int *is_integer) {
    Ptr s = P->s, end = P->end;
    int integer = 1;
    if (s < end && *s == '-') s++;
    if (s >= end) return GIVE_UP;
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        Ptr digits = s;
        while (s < end && *s >= '0' && *s <= '9') s++;
        if (s - digits > MAX_DIGITS) return GIVE_UP;
    } else {
        return GIVE_UP;
    }
    if (s < end && *s == '.') {
        integer = 0;
        s++;
        if (s >= end || *s < '0' || *s > '9') return GIVE_UP;
        while (s < end && *s >= '0' && *s <= '9') s++;
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        integer = 0;
        s++;
        if (s < end && (*s == '+' || *s == '-')) s++;
        if (s >= end || *s < '0' || *s > '9') return GIVE_UP;
        Ptr digits = s;
        while (s < end && *s >= '0' && *s <= '9') s++;
        if (s - digits > 2) return GIVE_UP; /* 1e999 is out of a double's range: msgspec fails where it reads one */
    }
    if (is_integer != NULL) *is_integer = integer;
    P->s = s;
    return OK;
}

static int literal(Parser *P, const char *word, Py_ssize_t n) {
    if (P->end - P->s < n || memcmp(P->s, word, (size_t)n) != 0) return GIVE_UP;
    P->s += n;
    return OK;
}

static int value(Parser *P);

/* The fields of an object, one at a time: `field(P, key, n, target, seen)` reads the value of each key (skipping
 * the keys it does not know) and gives up on a known key seen twice. Without `field` every value is skipped (and a
 * key may hold escapes: it is not compared). */
typedef int (*FieldReader)(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen);

/* The items of an array, one at a time: `item(P, target)` reads each (without it, each is skipped). */
typedef int (*ItemReader)(Parser *P, void *target);

/* The separator after a member or item: 1 for another one, 0 at `close` (consumed), or GIVE_UP. */
static inline int next_member(Parser *P, char close) {
    skip_ws(P);
    if (P->s >= P->end) return -GIVE_UP;
    if (*P->s == ',') {
        P->s++;
        skip_ws(P);
        return 1;
    }
    if (*P->s != close) return -GIVE_UP;
    P->s++;
    P->depth--;
    return 0;
}

/* The opening of an object or array: 1 when it has members, 0 when empty (consumed), or -GIVE_UP. */
static inline int open_members(Parser *P, char close) {
    if (++P->depth > MAX_DEPTH) return -GIVE_UP;
    P->s++;
    skip_ws(P);
    if (P->s < P->end && *P->s == close) {
        P->s++;
        P->depth--;
        return 0;
    }
    return 1;
}

static int fields(Parser *P, FieldReader field, void *target) {
    unsigned seen = 0;
    int more = open_members(P, '}');
    while (more > 0) {
        Str key = {0};
        int escaped;
        if (P->s >= P->end || *P->s != '"') return GIVE_UP;
        if (string(P, &key, &escaped) || (escaped && field != NULL)) return GIVE_UP;
        skip_ws(P);
        if (P->s >= P->end || *P->s != ':') return GIVE_UP;
        P->s++;
        skip_ws(P);
        int r = field != NULL ? field(P, key.p, key.n, target, &seen) : value(P);
        if (r) return r;
        more = next_member(P, '}');
    }
    return more < 0 ? -more : OK;
}

static int items(Parser *P, ItemReader item, void *target) {
    int more = open_members(P, ']');
    while (more > 0) {
        int r = item != NULL ? item(P, target) : value(P);
        if (r) return r;
        more = next_member(P, ']');
    }
    return more < 0 ? -more : OK;
}

/* Any value, checked and skipped. */
static int value(Parser *P) {
    if (P->s >= P->end) return GIVE_UP;
    switch (*P->s) {
        case '"': return string(P, NULL, NULL);
        case '{': return fields(P, NULL, NULL);
        case '[': return items(P, NULL, NULL);
        case 't': return literal(P, "true", 4);
        case 'f': return literal(P, "false", 5);
        case 'n': return literal(P, "null", 4);
        default: return number(P, NULL);
    }
}

static inline int is_null(Parser *P) {
    if (P->end - P->s >= 4 && memcmp(P->s, "null", 4) == 0) {
        P->s += 4;
        return 1;
    }
    return 0;
}

/* ---- typed fields (the types of `claude_records`) ---- */

/* `str | None`: a string without escapes (else give up) or null. */
static int text_or_null(Parser *P, Str *out) {
    if (P->s < P->end && *P->s == '"') {
        int escaped;
        if (string(P, out, &escaped) || escaped) return GIVE_UP;
        return OK;
    }
    return is_null(P) ? OK : GIVE_UP;
}

/* `Any` of which only a string value is read: any value; a string holding an escape gives up. */
static int any_text(Parser *P, Str *out) {
    if (P->s < P->end && *P->s == '"') {
        int escaped;
        if (string(P, out, &escaped) || escaped) return GIVE_UP;
        return OK;
    }
    return value(P);
}

/* `Any` of which only whether it is an object is read. */
static int any_object(Parser *P, int *is_object) {
    *is_object = P->s < P->end && *P->s == '{';
    return value(P);
}

/* `Count`: a JSON integer in 0..2**40 (no sign, no fraction, no exponent). */
static int count(Parser *P, int64_t *out) {
    Ptr s = P->s;
    int integer;
    if (s >= P->end || *s < '0' || *s > '9') return GIVE_UP;
    if (number(P, &integer) || !integer) return GIVE_UP;
    if (P->s - s > 13) return GIVE_UP;
    int64_t v = 0;
    for (; s < P->s; s++) v = v * 10 + (*s - '0');
    if (v > MAX_COUNT) return GIVE_UP;
    *out = v;
    return OK;
}

static int count_or_null(Parser *P, int *present, int64_t *out) {
    if (is_null(P)) {
        *present = 0;
        return OK;
    }
    *present = 1;
    return count(P, out);
}

#define KEY(word) (n == (Py_ssize_t)(sizeof(word) - 1) && memcmp(key, word, sizeof(word) - 1) == 0)
#define ONCE(bit)                         \
    do {                                  \
        if (*seen & (1u << (bit))) return GIVE_UP; \
        *seen |= 1u << (bit);             \
    } while (0)

static inline int at_object(Parser *P) { return P->s < P->end && *P->s == '{'; }

static int split_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Line *L = target;
    if (KEY("ephemeral_5m_input_tokens")) {
        ONCE(0);
        return count_or_null(P, &L->has_5m, &L->split_5m);
    }
    if (KEY("ephemeral_1h_input_tokens")) {
        ONCE(1);
        return count_or_null(P, &L->has_1h, &L->split_1h);
    }
    return value(P);
}

static int usage_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Line *L = target;
    static const char *names[4] = {"input_tokens", "output_tokens", "cache_read_input_tokens",
                                   "cache_creation_input_tokens"};
    for (int i = 0; i < 4; i++) {
        if (n == (Py_ssize_t)strlen(names[i]) && memcmp(key, names[i], (size_t)n) == 0) {
            ONCE(i);
            return count(P, &L->counts[i]);
        }
    }
    if (KEY("cache_creation")) {
        ONCE(4);
        if (is_null(P)) return OK;
        if (!at_object(P)) return GIVE_UP;
        L->has_split = 1;
        return fields(P, split_field, L);
    }
    if (KEY("service_tier")) {
        ONCE(5);
        return any_text(P, &L->tier);
    }
    return value(P);
}

static int task_input_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Block *B = target;
    if (KEY("subagent_type")) {
        ONCE(0);
        return any_text(P, &B->subagent_type);
    }
    return value(P);
}

static int block_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Block *B = target;
    if (KEY("type")) {
        ONCE(0);
        return any_text(P, &B->type);
    }
    if (KEY("id")) {
        ONCE(1);
        return text_or_null(P, &B->id);
    }
    if (KEY("name")) {
        ONCE(2);
        return text_or_null(P, &B->name);
    }
    if (KEY("input")) {
        ONCE(3);
        if (at_object(P)) {
            B->input_is_object = 1;
            return fields(P, task_input_field, B);
        }
        return value(P);
    }
    if (KEY("tool_use_id")) {
        ONCE(4);
        return any_text(P, &B->tool_use_id);
    }
    return value(P);
}

/* A `Block` of `list[Block]`: an object. */
static int block(Parser *P, void *target) {
    Line *L = target;
    if (!at_object(P)) return GIVE_UP;
    if (L->blocks == P->block_capacity) {
        Py_ssize_t capacity = P->block_capacity ? 2 * P->block_capacity : 16;
        Block *grown = PyMem_Realloc(P->blocks, (size_t)capacity * sizeof(Block));
        if (grown == NULL) {
            PyErr_NoMemory();
            return FAILED;
        }
        P->blocks = grown;
        P->block_capacity = capacity;
    }
    Block *B = &P->blocks[L->blocks++];
    memset(B, 0, sizeof(Block));
    return fields(P, block_field, B);
}

static int message_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Line *L = target;
    if (KEY("id")) {
        ONCE(0);
        return text_or_null(P, &L->message_id);
    }
    if (KEY("model")) {
        ONCE(1);
        return text_or_null(P, &L->model);
    }
    if (KEY("usage")) {
        ONCE(2);
        if (is_null(P)) return OK;
        if (!at_object(P)) return GIVE_UP;
        L->counts[0] = L->counts[1] = L->counts[2] = L->counts[3] = -1;
        int r = fields(P, usage_field, L);
        if (r) return r;
        for (int i = 0; i < 4; i++)
            if (L->counts[i] < 0) return GIVE_UP; /* a required count is missing */
        L->has_usage = 1;
        return OK;
    }
    if (KEY("content")) {
        ONCE(3);
        if (P->s < P->end && *P->s == '"') return string(P, NULL, NULL);
        if (P->s < P->end && *P->s == '[') {
            L->content_is_list = 1;
            return items(P, block, L);
        }
        return is_null(P) ? OK : GIVE_UP;
    }
    return value(P);
}

static int call_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Line *L = target;
    if (KEY("usage")) {
        ONCE(0);
        return any_object(P, &L->call_usage_is_object);
    }
    return value(P);
}

static int progress_message_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Line *L = target;
    if (KEY("type")) {
        ONCE(0);
        return any_text(P, &L->data_message_type);
    }
    if (KEY("message")) {
        ONCE(1);
        if (at_object(P)) {
            L->call_is_object = 1;
            return fields(P, call_field, L);
        }
        return value(P);
    }
    return value(P);
}

static int progress_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Line *L = target;
    if (KEY("type")) {
        ONCE(0);
        return any_text(P, &L->data_type);
    }
    if (KEY("agentId")) {
        ONCE(1);
        return any_text(P, &L->data_agent_id);
    }
    if (KEY("message")) {
        ONCE(2);
        if (at_object(P)) {
            L->data_message_is_object = 1;
            return fields(P, progress_message_field, L);
        }
        return value(P);
    }
    return value(P);
}

static int tool_use_result_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Line *L = target;
    if (KEY("agentId")) {
        ONCE(0);
        return any_text(P, &L->result_agent_id);
    }
    return value(P);
}

static int cost(Parser *P, Line *L) {
    if (is_null(P)) return OK;
    Ptr s = P->s;
    if (s >= P->end || *s < '0' || *s > '9') return GIVE_UP; /* negative: below `ge=0` (or -0: left alone) */
    if (number(P, NULL)) return GIVE_UP;
    Py_ssize_t n = P->s - s;
    char text[64];
    if (n >= (Py_ssize_t)sizeof(text)) return GIVE_UP;
    memcpy(text, s, (size_t)n);
    text[n] = '\0';
    char *stop;
    double v = PyOS_string_to_double(text, &stop, NULL);
    if (v == -1.0 && PyErr_Occurred()) return FAILED;
    if (stop != text + n || !isfinite(v)) return GIVE_UP;
    L->has_cost = 1;
    L->cost = v;
    return OK;
}

static int line_field(Parser *P, Ptr key, Py_ssize_t n, void *target, unsigned *seen) {
    Line *L = target;
    if (KEY("type")) {
        ONCE(0);
        return text_or_null(P, &L->type);
    }
    if (KEY("message")) {
        ONCE(1);
        if (at_object(P)) {
            L->message_is_object = 1;
            return fields(P, message_field, L);
        }
        return value(P);
    }
    if (KEY("requestId")) {
        ONCE(2);
        return text_or_null(P, &L->request_id);
    }
    if (KEY("sessionId")) {
        ONCE(3);
        return text_or_null(P, &L->session_id);
    }
    if (KEY("agentId")) {
        ONCE(4);
        return text_or_null(P, &L->agent_id);
    }
    if (KEY("isSidechain")) {
        ONCE(5);
        if (is_null(P)) return OK;
        if (literal(P, "true", 4) == OK) {
            L->sidechain = 1;
            return OK;
        }
        if (literal(P, "false", 5) == OK) {
            L->sidechain = 0;
            return OK;
        }
        return GIVE_UP;
    }
    if (KEY("costUSD")) {
        ONCE(6);
        return cost(P, L);
    }
    if (KEY("timestamp")) {
        ONCE(7);
        return text_or_null(P, &L->timestamp);
    }
    if (KEY("parentToolUseID")) {
        ONCE(8);
        return any_text(P, &L->parent_tool_use_id);
    }
    if (KEY("data")) {
        ONCE(9);
        if (at_object(P)) {
            L->data_is_object = 1;
            return fields(P, progress_field, L);
        }
        return value(P);
    }
    if (KEY("toolUseResult")) {
        ONCE(10);
        if (at_object(P)) {
            L->result_is_object = 1;
            return fields(P, tool_use_result_field, L);
        }
        return value(P);
    }
    return value(P);
}

/* ---- what a file's lines add up to (the loop of `claude_fast.parse_fast`), held in C until merged ---- */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

static int buf_grow(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_grow(b, n)) return -1;
    memcpy(b->p + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

/* A text kept in a `Lines` arena; `off` < 0: None. */
typedef struct {
    Py_ssize_t off, n;
} Span;

/* An assistant line kept (`claude_fast._Columns`' per-line lists). */
typedef struct {
    Py_ssize_t line;
    Span message_id, request_id, key, model, session, agent_id, timestamp, tier;
    int sidechain, has_cost, has_usage, has_1h;
    double cost;
    int64_t input, cache_read, cache_write, write_1h, output;
} Call;

typedef struct {
    Py_ssize_t at; /* the index of the call line holding it */
    Span id, name;
} Use;

typedef struct {
    Py_ssize_t at; /* the number of call lines before it */
    Span id, time;
} Result;

typedef struct {
    PyObject_HEAD
    Buf arena, calls, uses, results; /* texts; arrays of Call, Use, Result */
} Lines;

#define N_CALLS(L) ((L)->calls.len / (Py_ssize_t)sizeof(Call))
#define N_USES(L) ((L)->uses.len / (Py_ssize_t)sizeof(Use))
#define N_RESULTS(L) ((L)->results.len / (Py_ssize_t)sizeof(Result))
#define CALLS(L) ((Call *)(L)->calls.p)
#define USES(L) ((Use *)(L)->uses.p)
#define RESULTS(L) ((Result *)(L)->results.p)
#define TEXT(L, s) ((L)->arena.p + (s).off)

static const Span NONE = {-1, 0};

/* `s` copied into the arena: None where it is not a string, or is empty and `truthy` asks for one (`x or None`). */
static int keep(Lines *L, const Str *s, int truthy, Span *out) {
    if (!s->is_str || (truthy && s->n == 0)) {
        *out = NONE;
        return OK;
    }
    out->off = L->arena.len;
    out->n = s->n;
    /* storage even for an empty text: its pointer into the arena must not be NULL, which would read as null */
    return buf_put(&L->arena, s->p, s->n) || buf_grow(&L->arena, 1) ? FAILED : OK;
}

/* The call key of `claude_fast._table`: the message id, with ":<requestId>" when there is one (None without a
 * message id: the line is a call of its own). */
static int keep_key(Lines *L, Call *c) {
    if (c->message_id.off < 0 || c->request_id.off < 0) {
        c->key = c->message_id;
        return OK;
    }
    Py_ssize_t n = c->message_id.n + 1 + c->request_id.n;
    if (buf_grow(&L->arena, n)) return FAILED;
    char *to = L->arena.p + L->arena.len;
    memcpy(to, TEXT(L, c->message_id), (size_t)c->message_id.n);
    to[c->message_id.n] = ':';
    memcpy(to + c->message_id.n + 1, TEXT(L, c->request_id), (size_t)c->request_id.n);
    c->key.off = L->arena.len;
    c->key.n = n;
    L->arena.len += n;
    return OK;
}

static void Lines_dealloc(Lines *L) {
    PyMem_Free(L->arena.p);
    PyMem_Free(L->calls.p);
    PyMem_Free(L->uses.p);
    PyMem_Free(L->results.p);
    Py_TYPE(L)->tp_free((PyObject *)L);
}

/* A new reference: the text of `s`, or None. */
static PyObject *span_text(const Lines *L, Span s) {
    if (s.off < 0) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(TEXT(L, s), s.n, "strict");
}

static int append(PyObject *list, PyObject *item) {
    if (item == NULL) return -1;
    int r = PyList_Append(list, item);
    Py_DECREF(item);
    return r;
}

enum {
    O_LINE, O_MESSAGE_ID, O_REQUEST_ID, O_MODEL, O_SESSION, O_AGENT_ID, O_SIDECHAIN, O_COST, O_TIMESTAMP, O_TIER,
    O_TOKENS, O_TOOL_AT, O_TOOL_ID, O_TOOL_NAME, O_RESULT_LINE, O_RESULT_ID, O_RESULT_TIME, N_LISTS
};

PyDoc_STRVAR(Lines_lists_doc,
             "lists(out)\n\n"
             "Append what the lines hold to the first 17 lists of `out` (`claude_fast._Columns.scanned()`): the\n"
             "values the Python loop (`claude_fast._read`) reads, to compare the two.");

static PyObject *Lines_lists(Lines *L, PyObject *args) {
    PyObject *out;
    if (!PyArg_ParseTuple(args, "O!:lists", &PyTuple_Type, &out)) return NULL;
    if (PyTuple_GET_SIZE(out) < N_LISTS) {
        PyErr_Format(PyExc_ValueError, "lists: out must hold %d lists", N_LISTS);
        return NULL;
    }
    PyObject *o[N_LISTS];
    for (int i = 0; i < N_LISTS; i++) {
        o[i] = PyTuple_GET_ITEM(out, i);
        if (!PyList_Check(o[i])) return PyErr_Format(PyExc_TypeError, "lists: out must hold lists");
    }
    for (Py_ssize_t i = 0; i < N_CALLS(L); i++) {
        const Call *c = &CALLS(L)[i];
        PyObject *tokens = Py_NewRef(Py_None);
        if (c->has_usage) {
            Py_DECREF(tokens);
            tokens = Py_BuildValue("(LLLOL)", (long long)c->input, (long long)c->cache_read, (long long)c->cache_write,
                                   Py_None, (long long)c->output);
            if (tokens != NULL && c->has_1h) {
                PyObject *hour = PyLong_FromLongLong(c->write_1h);
                if (hour == NULL) Py_CLEAR(tokens);
                else PyTuple_SetItem(tokens, 3, hour);
            }
        }
        if (append(o[O_TOKENS], tokens) || append(o[O_TIER], span_text(L, c->tier)) ||
            append(o[O_LINE], PyLong_FromSsize_t(c->line)) ||
            append(o[O_MESSAGE_ID], span_text(L, c->message_id)) ||
            append(o[O_REQUEST_ID], span_text(L, c->request_id)) || append(o[O_MODEL], span_text(L, c->model)) ||
            append(o[O_SESSION], span_text(L, c->session)) || append(o[O_AGENT_ID], span_text(L, c->agent_id)) ||
            append(o[O_SIDECHAIN], PyBool_FromLong(c->sidechain)) ||
            append(o[O_COST], c->has_cost ? PyFloat_FromDouble(c->cost) : Py_NewRef(Py_None)) ||
            append(o[O_TIMESTAMP], span_text(L, c->timestamp)))
            return NULL;
    }
    for (Py_ssize_t t = 0; t < N_USES(L); t++) {
        const Use *u = &USES(L)[t];
        if (append(o[O_TOOL_AT], PyLong_FromSsize_t(u->at)) || append(o[O_TOOL_ID], span_text(L, u->id)) ||
            append(o[O_TOOL_NAME], span_text(L, u->name)))
            return NULL;
    }
    for (Py_ssize_t r = 0; r < N_RESULTS(L); r++) {
        const Result *x = &RESULTS(L)[r];
        if (append(o[O_RESULT_LINE], PyLong_FromSsize_t(x->at)) || append(o[O_RESULT_ID], span_text(L, x->id)) ||
            append(o[O_RESULT_TIME], span_text(L, x->time)))
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Lines_methods[] = {
    {"lists", (PyCFunction)Lines_lists, METH_VARARGS, Lines_lists_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LinesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "costscope.parsers._claude_scan.Lines",
    .tp_doc = PyDoc_STR("What `scan` read of one file's lines (calls, tool uses, tool results), for `merge`."),
    .tp_basicsize = sizeof(Lines),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)Lines_dealloc,
    .tp_methods = Lines_methods,
};

enum { R_LINKS, R_TASKS, R_PROGRESS_AGENTS, N_RARE };

typedef struct {
    Lines *lines;
    PyObject *rare[N_RARE]; /* Python lists: (agentId, tool call id) links, (tool call id, subagent type) tasks, and
                               the agentId of each progress line copying a subagent's call */
    Py_ssize_t synthetic, unknown;
} Out;

static inline int equals(const Str *s, const char *word) {
    Py_ssize_t n = (Py_ssize_t)strlen(word);
    return s->is_str && s->n == n && memcmp(s->p, word, (size_t)n) == 0;
}

/* A new reference: the string, or None where `truthy` asks for a non-empty one (`x or None`). */
static PyObject *text(const Str *s, int truthy) {
    if (!s->is_str || (truthy && s->n == 0)) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8((const char *)s->p, s->n, "strict");
}

/* Append a new reference (stolen) to rare list `i`; NULL fails. */
static int add(Out *O, int i, PyObject *item) { return append(O->rare[i], item) ? FAILED : OK; }

/* `claude_code.started_type`: a call of a tool in TASK_TOOLS with a non-empty `subagent_type`. */
static int starts_subagent(const Block *B) {
    return (equals(&B->name, "Task") || equals(&B->name, "Agent")) && B->subagent_type.is_str &&
           B->subagent_type.n > 0;
}

static int assistant(Out *O, const Line *L, const Block *B, Py_ssize_t lineno) {
    int r;
    if (!L->message_is_object) return GIVE_UP;
    for (Py_ssize_t i = 0; i < L->blocks; i++) { /* the subagent types its Task/Agent calls start */
        if (B[i].input_is_object && B[i].id.is_str && starts_subagent(&B[i])) {
            r = add(O, R_TASKS, Py_BuildValue("(NN)", text(&B[i].id, 0), text(&B[i].subagent_type, 0)));
            if (r) return r;
        }
    }
    if (equals(&L->model, "<synthetic>")) {
        O->synthetic++;
        return OK;
    }
    Call c;
    memset(&c, 0, sizeof(c));
    if (L->has_usage) {
        if (L->has_split) { /* both null, or not adding up to the total: the full check judges */
            if (!L->has_5m && !L->has_1h) return GIVE_UP;
            if ((L->has_5m ? L->split_5m : 0) + (L->has_1h ? L->split_1h : 0) != L->counts[3]) return GIVE_UP;
            c.has_1h = L->has_1h;
            c.write_1h = L->split_1h;
        }
        c.has_usage = 1;
        c.input = L->counts[0];
        c.output = L->counts[1];
        c.cache_read = L->counts[2];
        c.cache_write = L->counts[3];
    }
    Lines *lines = O->lines;
    c.line = lineno;
    c.sidechain = L->sidechain == 1;
    c.has_cost = L->has_cost;
    c.cost = L->cost;
    if ((r = keep(lines, &L->tier, 0, &c.tier)) || (r = keep(lines, &L->message_id, 1, &c.message_id)) ||
        (r = keep(lines, &L->request_id, 1, &c.request_id)) || (r = keep(lines, &L->model, 1, &c.model)) ||
        (r = keep(lines, &L->session_id, 1, &c.session)) || (r = keep(lines, &L->agent_id, 1, &c.agent_id)) ||
        (r = keep(lines, &L->timestamp, 1, &c.timestamp)) || (r = keep_key(lines, &c)))
        return r;
    Py_ssize_t at = N_CALLS(lines);
    if (buf_put(&lines->calls, &c, sizeof(c))) return FAILED;
    for (Py_ssize_t i = 0; i < L->blocks; i++) {
        if (equals(&B[i].type, "tool_use") && B[i].id.is_str && B[i].id.n > 0) {
            Use u = {at, NONE, NONE};
            if ((r = keep(lines, &B[i].id, 0, &u.id)) || (r = keep(lines, &B[i].name, 1, &u.name))) return r;
            if (buf_put(&lines->uses, &u, sizeof(u))) return FAILED;
        }
    }
    return OK;
}

static int user(Out *O, const Line *L, const Block *B) {
    int r;
    if (!L->message_is_object || !L->content_is_list) return OK;
    Py_ssize_t first = -1;
    Lines *lines = O->lines;
    Span time = NONE;
    for (Py_ssize_t i = 0; i < L->blocks; i++) {
        if (!equals(&B[i].type, "tool_result") || !B[i].tool_use_id.is_str || B[i].tool_use_id.n == 0) continue;
        if (first < 0) {
            first = i;
            if ((r = keep(lines, &L->timestamp, 1, &time))) return r; /* one copy for all its results */
        }
        Result x = {N_CALLS(lines), NONE, time};
        if ((r = keep(lines, &B[i].tool_use_id, 0, &x.id))) return r;
        if (buf_put(&lines->results, &x, sizeof(x))) return FAILED;
    }
    if (first >= 0 && L->result_is_object && L->result_agent_id.is_str)
        return add(O, R_LINKS, Py_BuildValue("(NN)", text(&L->result_agent_id, 0), text(&B[first].tool_use_id, 0)));
    return OK;
}

static int progress(Out *O, const Line *L) {
    int r;
    if (!L->data_is_object) return OK;
    if (L->data_agent_id.is_str && L->parent_tool_use_id.is_str) {
        r = add(O, R_LINKS, Py_BuildValue("(NN)", text(&L->data_agent_id, 0), text(&L->parent_tool_use_id, 0)));
        if (r) return r;
    }
    if (!equals(&L->data_type, "agent_progress") || !L->data_message_is_object) return OK;
    if (!equals(&L->data_message_type, "assistant") || !L->call_is_object || !L->call_usage_is_object) return OK;
    /* a subagent's call copied into its session: a copy when the subagent's file exists (the caller checks) */
    if (!L->data_agent_id.is_str || L->data_agent_id.n == 0) return GIVE_UP;
    return add(O, R_PROGRESS_AGENTS, text(&L->data_agent_id, 0));
}

static const char *KNOWN[] = {"system", "summary", "file-history-snapshot", "queue-operation", "assistant", "user",
                              "progress"};

static int one_line(Parser *P, Out *O, Ptr start, Ptr stop, Py_ssize_t lineno) {
    Line L;
    memset(&L, 0, sizeof(L));
    L.sidechain = -1;
    P->s = start;
    P->end = stop;
    P->depth = 0;
    skip_ws(P);
    if (!at_object(P)) return GIVE_UP;
    int r = fields(P, line_field, &L);
    if (r) return r;
    skip_ws(P);
    if (P->s != P->end) return GIVE_UP;
    if (!L.type.is_str) return GIVE_UP; /* no type: the reference path explains the skip */
    if (equals(&L.type, "assistant")) return assistant(O, &L, P->blocks, lineno);
    if (equals(&L.type, "user")) return user(O, &L, P->blocks);
    if (equals(&L.type, "progress")) return progress(O, &L);
    for (size_t i = 0; i < sizeof(KNOWN) / sizeof(KNOWN[0]); i++)
        if (equals(&L.type, KNOWN[i])) return OK;
    O->unknown++;
    return OK;
}

static inline int blank(Ptr s, Ptr end) { /* bytes.isspace() (or empty) */
    for (; s < end; s++)
        if (!(*s == ' ' || (*s >= '\t' && *s <= '\r'))) return 0;
    return 1;
}

PyDoc_STRVAR(scan_doc,
             "scan(block, lineno, lines, rare) -> (lineno, records, synthetic, unknown) | None\n\n"
             "Read the lines of `block` (numbered from lineno + 1): the calls, tool uses and tool results into\n"
             "`lines` (a `Lines`), the links, tasks and progress copies into the 3 lists of `rare`; None: give up.\n"
             "Returns the number of the block's last line, the records (lines not blank) and those of them that\n"
             "are `<synthetic>` messages or of a record type the fast path does not know.");

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t lineno;
    PyObject *lines, *rare;
    if (!PyArg_ParseTuple(args, "y*nO!O!:scan", &view, &lineno, &LinesType, &lines, &PyTuple_Type, &rare))
        return NULL;
    Out O;
    memset(&O, 0, sizeof(O));
    O.lines = (Lines *)lines;
    Parser P;
    memset(&P, 0, sizeof(P));
    PyObject *result = NULL;
    int r = OK;
    if (PyTuple_GET_SIZE(rare) != N_RARE) {
        PyErr_Format(PyExc_ValueError, "scan: rare must hold %d lists", N_RARE);
        goto done;
    }
    for (int i = 0; i < N_RARE; i++) {
        O.rare[i] = PyTuple_GET_ITEM(rare, i);
        if (!PyList_Check(O.rare[i])) {
            PyErr_SetString(PyExc_TypeError, "scan: rare must hold lists");
            goto done;
        }
    }
    Ptr s = view.buf, end = s + view.len;
    Py_ssize_t records = 0;
    while (s < end) {
        Ptr nl = memchr(s, '\n', (size_t)(end - s));
        Ptr stop = nl ? nl : end;
        lineno++;
        if (!blank(s, stop)) {
            records++;
            r = one_line(&P, &O, s, stop, lineno);
            if (r) break;
        }
        s = nl ? nl + 1 : end;
    }
    if (r == FAILED) goto done;
    if (r == GIVE_UP) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = Py_BuildValue("(nnnn)", lineno, records, O.synthetic, O.unknown);
done:
    PyMem_Free(P.blocks);
    PyBuffer_Release(&view);
    return result;
}

/* ---- the rows of many files, kept as Arrow buffers until taken (`claude_fast._Rows`) ---- */

enum {
    C_SOURCE, C_LINE, C_FORMAT, C_RECORD_ID, C_TRACE_ID, C_SPAN_ID, C_PARENT_ID, C_KIND, C_AGENT, C_TENANT, C_TOOL,
    C_START, C_END, C_PROVIDER, C_MODEL, C_TIER, C_INPUT, C_CACHE_READ, C_CACHE_WRITE, C_CACHE_WRITE_1H, C_OUTPUT,
    C_USAGE_SOURCE, C_COST, C_SIDECHAIN, N_COLS
};
static const char *COLUMN_NAMES[N_COLS] = {
    "source", "line", "format", "record_id", "trace_id", "span_id", "parent_id", "kind", "agent", "tenant", "tool",
    "start", "end", "provider", "model", "service_tier", "input_tokens", "cache_read_tokens", "cache_write_tokens",
    "cache_write_1h_tokens", "output_tokens", "usage_source", "reported_cost_usd", "sidechain"};
enum { K_TEXT, K_INT, K_FLOAT, K_FLAG };
static const int COLUMN_KINDS[N_COLS] = {
    K_TEXT, K_INT, K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_INT, K_INT, K_TEXT,
    K_TEXT, K_TEXT, K_INT, K_INT, K_INT, K_INT, K_INT, K_TEXT, K_FLOAT, K_FLAG};

typedef struct {
    Buf data, offsets, valid; /* values (or text bytes), int32 text offsets, validity bits */
    Py_ssize_t nulls;
} Column;

typedef struct {
    PyObject_HEAD
    Column cols[N_COLS];
    Py_ssize_t rows;
} Rows;

/* Mark value `row` of a column valid or null (its bitmap grows a byte at a time). */
static int set_valid(Column *c, Py_ssize_t row, int valid) {
    if (row % 8 == 0) {
        char zero = 0;
        if (buf_put(&c->valid, &zero, 1)) return -1;
    }
    if (valid)
        c->valid.p[row / 8] |= (char)(1 << (row % 8));
    else
        c->nulls++;
    return 0;
}

/* Text `p` (n bytes; NULL: null) at the end of a text column. */
static int put_bytes(Rows *R, int col, const char *p, Py_ssize_t n) {
    Column *c = &R->cols[col];
    if (c->offsets.len == 0) {
        int32_t zero = 0;
        if (buf_put(&c->offsets, &zero, 4)) return -1;
    }
    if (p != NULL) {
        if (buf_put(&c->data, p, n)) return -1;
        if (c->data.len > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "more than 2 GiB of text in one column of parsed rows");
            return -1;
        }
    }
    int32_t end = (int32_t)c->data.len;
    if (buf_put(&c->offsets, &end, 4)) return -1;
    return set_valid(c, R->rows, p != NULL);
}

static int put_text(Rows *R, int col, PyObject *value) {
    if (value == Py_None) return put_bytes(R, col, NULL, 0);
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(value, &n);
    return text == NULL ? -1 : put_bytes(R, col, text, n);
}

/* A constant text (NULL: null). */
static int put_cstr(Rows *R, int col, const char *text) {
    return put_bytes(R, col, text, text != NULL ? (Py_ssize_t)strlen(text) : 0);
}

/* An 8-byte value (an int64 or a double) at the end of a column, or a null. */
static int put_word(Rows *R, int col, const void *value, int valid) {
    Column *c = &R->cols[col];
    if (buf_put(&c->data, value, 8)) return -1;
    return set_valid(c, R->rows, valid);
}

/* Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int put_flag(Rows *R, int col, int flag) {
    char v = (char)(flag != 0);
    return buf_put(&R->cols[col].data, &v, 1);
}

static void rows_clear(Rows *R) {
    for (int i = 0; i < N_COLS; i++) {
        PyMem_Free(R->cols[i].data.p);
        PyMem_Free(R->cols[i].offsets.p);
        PyMem_Free(R->cols[i].valid.p);
    }
    memset(R->cols, 0, sizeof(R->cols));
    R->rows = 0;
}

/* Back to `rows` rows (a merge that failed half-way leaves none of its rows). */
static void rows_truncate(Rows *R, Py_ssize_t rows) {
    for (int i = 0; i < N_COLS; i++) {
        Column *c = &R->cols[i];
        switch (COLUMN_KINDS[i]) {
            case K_TEXT:
                if (c->offsets.len) {
                    c->offsets.len = 4 * (rows + 1);
                    int32_t end;
                    memcpy(&end, c->offsets.p + 4 * rows, 4);
                    c->data.len = end;
                }
                break;
            case K_FLAG: c->data.len = rows; break;
            default: c->data.len = 8 * rows;
        }
        if (COLUMN_KINDS[i] != K_FLAG) {
            c->valid.len = (rows + 7) / 8;
            if (rows % 8) c->valid.p[rows / 8] &= (char)((1 << (rows % 8)) - 1);
            c->nulls = 0; /* recounted below */
            for (Py_ssize_t r = 0; r < rows; r++)
                if (!(c->valid.p[r / 8] & (1 << (r % 8)))) c->nulls++;
        }
    }
    R->rows = rows;
}

static void Rows_dealloc(Rows *R) {
    rows_clear(R);
    Py_TYPE(R)->tp_free((PyObject *)R);
}


PyDoc_STRVAR(Rows_take_doc,
             "take(ranges=None) -> (rows, {column: (validity | None, data, offsets | None)})\n\n"
             "The rows held, or those of `ranges` ((start, stop) pairs) in that order, as Arrow buffers (text: int32\n"
             "offsets and UTF-8 data; times: int64 microseconds; `sidechain`: one byte per row). The builder is\n"
             "empty afterwards: rows outside `ranges` are dropped.");

/* The buffers of column `c` for rows `ranges` (n pairs) in order; `total` rows. */
static PyObject *taken(const Column *c, int kind, const Py_ssize_t *ranges, Py_ssize_t n, Py_ssize_t total) {
    PyObject *valid = NULL, *data = NULL, *offsets = NULL;
    Py_ssize_t width = kind == K_FLAG ? 1 : 8;
    if (c->nulls && kind != K_FLAG) {
        valid = PyBytes_FromStringAndSize(NULL, (total + 7) / 8);
        if (valid == NULL) goto fail;
        unsigned char *bits = (unsigned char *)PyBytes_AS_STRING(valid);
        memset(bits, 0, (size_t)((total + 7) / 8));
        Py_ssize_t at = 0;
        for (Py_ssize_t k = 0; k < n; k++)
            for (Py_ssize_t r = ranges[2 * k]; r < ranges[2 * k + 1]; r++, at++)
                if (c->valid.p[r / 8] & (1 << (r % 8))) bits[at / 8] |= (unsigned char)(1 << (at % 8));
    }
    if (kind == K_TEXT) {
        const int32_t *from = (const int32_t *)c->offsets.p;
        int32_t zero = 0;
        Py_ssize_t bytes = 0;
        for (Py_ssize_t k = 0; k < n && from; k++) bytes += from[ranges[2 * k + 1]] - from[ranges[2 * k]];
        offsets = PyBytes_FromStringAndSize(NULL, 4 * (total + 1));
        data = PyBytes_FromStringAndSize(NULL, bytes);
        if (offsets == NULL || data == NULL) goto fail;
        int32_t *to = (int32_t *)PyBytes_AS_STRING(offsets);
        char *text = PyBytes_AS_STRING(data);
        int32_t end = 0;
        memcpy(to, &zero, 4);
        Py_ssize_t at = 0;
        for (Py_ssize_t k = 0; k < n && from; k++) {
            Py_ssize_t a = ranges[2 * k], b = ranges[2 * k + 1];
            memcpy(text + end, c->data.p + from[a], (size_t)(from[b] - from[a]));
            for (Py_ssize_t r = a; r < b; r++) to[++at] = end + (from[r + 1] - from[a]);
            end += from[b] - from[a];
        }
        if (!from)
            for (Py_ssize_t r = 1; r <= total; r++) to[r] = 0;
    } else {
        data = PyBytes_FromStringAndSize(NULL, width * total);
        if (data == NULL) goto fail;
        char *to = PyBytes_AS_STRING(data);
        for (Py_ssize_t k = 0; k < n; k++) {
            Py_ssize_t a = ranges[2 * k], b = ranges[2 * k + 1];
            memcpy(to, c->data.p + width * a, (size_t)(width * (b - a)));
            to += width * (b - a);
        }
        offsets = Py_NewRef(Py_None);
    }
    return Py_BuildValue("(NNN)", valid ? valid : Py_NewRef(Py_None), data, offsets);
fail:
    Py_XDECREF(valid);
    Py_XDECREF(data);
    Py_XDECREF(offsets);
    return NULL;
}

static PyObject *Rows_take(Rows *R, PyObject *args) {
    PyObject *spec = Py_None;
    if (!PyArg_ParseTuple(args, "|O:take", &spec)) return NULL;
    Py_ssize_t n = 1, total = 0;
    Py_ssize_t *ranges = NULL;
    PyObject *columns = NULL, *result = NULL, *seq = NULL;
    if (spec == Py_None) {
        ranges = PyMem_Malloc(2 * sizeof(Py_ssize_t));
        if (ranges == NULL) return PyErr_NoMemory();
        ranges[0] = 0;
        ranges[1] = total = R->rows;
    } else {
        seq = PySequence_Fast(spec, "take: ranges must be a sequence of (start, stop)");
        if (seq == NULL) return NULL;
        n = PySequence_Fast_GET_SIZE(seq);
        ranges = PyMem_Malloc((size_t)(2 * (n ? n : 1)) * sizeof(Py_ssize_t));
        if (ranges == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            Py_ssize_t a, b;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "nn:range", &a, &b)) goto done;
            if (a < 0 || a > b || b > R->rows) {
                PyErr_Format(PyExc_ValueError, "take: range (%zd, %zd) outside the %zd rows held", a, b, R->rows);
                goto done;
            }
            ranges[2 * k] = a;
            ranges[2 * k + 1] = b;
            total += b - a;
        }
    }
    columns = PyDict_New();
    if (columns == NULL) goto done;
    for (int i = 0; i < N_COLS; i++) {
        PyObject *part = taken(&R->cols[i], COLUMN_KINDS[i], ranges, n, total);
        if (part == NULL || PyDict_SetItemString(columns, COLUMN_NAMES[i], part) < 0) {
            Py_XDECREF(part);
            goto done;
        }
        Py_DECREF(part);
    }
    result = Py_BuildValue("(nO)", total, columns);
    if (result != NULL) rows_clear(R);
done:
    Py_XDECREF(columns);
    Py_XDECREF(seq);
    PyMem_Free(ranges);
    return result;
}

static PyObject *Rows_len(Rows *R, PyObject *unused) { return PyLong_FromSsize_t(R->rows); }

static PyObject *Rows_text_bytes(Rows *R, PyObject *unused) {
    Py_ssize_t most = 0;
    for (int i = 0; i < N_COLS; i++)
        if (COLUMN_KINDS[i] == K_TEXT && R->cols[i].data.len > most) most = R->cols[i].data.len;
    return PyLong_FromSsize_t(most);
}

static PyMethodDef Rows_methods[] = {
    {"take", (PyCFunction)Rows_take, METH_VARARGS, Rows_take_doc},
    {"count", (PyCFunction)Rows_len, METH_NOARGS, "count() -> the rows held"},
    {"text_bytes", (PyCFunction)Rows_text_bytes, METH_NOARGS,
     "text_bytes() -> the bytes of the largest text column (Arrow's int32 offsets hold up to 2 GiB)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RowsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "costscope.parsers._claude_scan.Rows",
    .tp_doc = PyDoc_STR("Rows of merged Claude Code files, held as Arrow buffers until taken."),
    .tp_basicsize = sizeof(Rows),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)Rows_dealloc,
    .tp_methods = Rows_methods,
};

/* ---- the merge of one file's lines into rows (`claude_fast._table` and `_columns`, for what `scan` read) ---- */

static int real_time(const char *t);

/* A time Claude Code writes (JavaScript's toISOString): YYYY-MM-DDTHH:MM:SS.sssZ, ASCII digits, a real time. */
static int iso_time(const char *t, Py_ssize_t n) {
    static const char form[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (n != (Py_ssize_t)sizeof(form) - 1) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (form[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != form[i]) return 0;
    }
    return real_time(t);
}

/* Whether the digits of an ISO time name a real one (year 1 or later, as Python's datetime; no leap second). */
static int real_time(const char *t) {
    int64_t year = digits(t, 4), month = digits(t + 5, 2), day = digits(t + 8, 2);
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1) return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > days[month - 1] + (month == 2 && leap)) return 0;
    return digits(t + 11, 2) <= 23 && digits(t + 14, 2) <= 59 && digits(t + 17, 2) <= 59;
}

static int span_time_ok(const Lines *L, Span s) { return s.off < 0 || iso_time(TEXT(L, s), s.n); }

/* Texts compared as Python compares str (code points; for UTF-8 bytes, the same order as bytes). */
static int span_cmp(const Lines *L, Span a, Span b) {
    Py_ssize_t n = a.n < b.n ? a.n : b.n;
    int c = memcmp(TEXT(L, a), TEXT(L, b), (size_t)n);
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

static int span_equal(const Lines *L, Span a, Span b) {
    return a.n == b.n && memcmp(TEXT(L, a), TEXT(L, b), (size_t)a.n) == 0;
}

static uint64_t span_hash(const Lines *L, Span s) {
    const unsigned char *p = (const unsigned char *)TEXT(L, s);
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)s.n;
    Py_ssize_t i = 0;
    for (; i + 8 <= s.n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, p + i, (size_t)(s.n - i));
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 29);
}

/* A set of texts of one `Lines` (open addressing): `find` gives the index stored with an equal text, or -1. */
typedef struct {
    Py_ssize_t *slots; /* index + 1; 0: empty */
    Span *keys;        /* the key of each index */
    Py_ssize_t mask;
} Table;

static int table_init(Table *T, Py_ssize_t entries) {
    Py_ssize_t size = 8;
    while (size < 2 * entries) size *= 2;
    T->slots = PyMem_Calloc((size_t)size, sizeof(Py_ssize_t));
    T->keys = PyMem_Malloc(sizeof(Span) * (size_t)(entries ? entries : 1));
    T->mask = size - 1;
    if (T->slots == NULL || T->keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void table_free(Table *T) {
    PyMem_Free(T->slots);
    PyMem_Free(T->keys);
}

/* The index stored with `key`; when there is none, `index` is stored with it and -1 returned. `index` must be below
 * the `entries` the table was made for. */
static Py_ssize_t table_get_or_add(Table *T, const Lines *L, Span key, Py_ssize_t index) {
    for (Py_ssize_t at = (Py_ssize_t)(span_hash(L, key) & (uint64_t)T->mask);; at = (at + 1) & T->mask) {
        Py_ssize_t held = T->slots[at] - 1;
        if (held < 0) {
            T->slots[at] = index + 1;
            T->keys[index] = key;
            return -1;
        }
        if (span_equal(L, T->keys[held], key)) return held;
    }
}

static Py_ssize_t table_find(const Table *T, const Lines *L, Span key) {
    for (Py_ssize_t at = (Py_ssize_t)(span_hash(L, key) & (uint64_t)T->mask);; at = (at + 1) & T->mask) {
        Py_ssize_t held = T->slots[at] - 1;
        if (held < 0) return -1;
        if (span_equal(L, T->keys[held], key)) return held;
    }
}

static int put_span(Rows *R, int col, const Lines *L, Span s) {
    return put_bytes(R, col, s.off < 0 ? NULL : TEXT(L, s), s.n);
}

static int put_value(Rows *R, int col, int64_t value, int valid) { return put_word(R, col, &value, valid); }

/* A time `iso_time` accepted, as microseconds since the epoch (None: null). */
static int put_span_time(Rows *R, int col, const Lines *L, Span s) {
    int64_t us = 0;
    if (s.off >= 0) {
        const char *t = TEXT(L, s);
        int64_t days = days_from_civil(digits(t, 4), digits(t + 5, 2), digits(t + 8, 2));
        int64_t seconds = ((days * 24 + digits(t + 11, 2)) * 60 + digits(t + 14, 2)) * 60 + digits(t + 17, 2);
        us = seconds * 1000000 + digits(t + 20, 3) * 1000;
    }
    return put_word(R, col, &us, s.off >= 0);
}

/* The agent of each distinct agentId: `agent_name(agentId, session)`, with the session of its first line. */
typedef struct {
    Table ids;
    PyObject **names; /* per index of `ids` */
    Py_ssize_t count;
} Agents;

static void agents_free(Agents *A) {
    for (Py_ssize_t i = 0; i < A->count; i++) Py_XDECREF(A->names[i]);
    PyMem_Free(A->names);
    table_free(&A->ids);
}

/* A borrowed reference: the agent of call line `i` (its named agentId, else main or sidechain). */
static PyObject *agent_of(const Agents *A, const Lines *L, const Call *c, PyObject *main_agent, PyObject *sidechain) {
    if (c->agent_id.off < 0) return c->sidechain ? sidechain : main_agent;
    return A->names[table_find(&A->ids, L, c->agent_id)];
}

PyDoc_STRVAR(merge_doc,
             "merge(lines, agent_name, main, sidechain, rows, source, tenant) -> (merged, start, stop) | None\n\n"
             "Append the rows of one file, from what `scan` read into `lines`, to `rows` (`claude_fast._table` and\n"
             "`_columns`); returns the lines merged into others and where the file's rows are in `rows`, or None to\n"
             "give up (a time not in toISOString form or not a real time), appending nothing.");

static PyObject *merge(PyObject *self, PyObject *args) {
    PyObject *agent_name, *main_agent, *sidechain_agent, *source, *tenant;
    Lines *L;
    Rows *rows;
    if (!PyArg_ParseTuple(args, "O!OOOO!UO:merge", &LinesType, &L, &agent_name, &main_agent, &sidechain_agent,
                          &RowsType, &rows, &source, &tenant))
        return NULL;
    if (!PyUnicode_Check(main_agent) || !PyUnicode_Check(sidechain_agent) ||
        !(tenant == Py_None || PyUnicode_Check(tenant))) {
        PyErr_SetString(PyExc_TypeError, "merge: main and sidechain must be str, tenant str or None");
        return NULL;
    }
    Py_ssize_t lines = N_CALLS(L), uses = N_USES(L), n_results = N_RESULTS(L);
    const Call *calls = CALLS(L);
    const Use *use = USES(L);
    const Result *res = RESULTS(L);
    for (Py_ssize_t i = 0; i < lines; i++)
        if (!span_time_ok(L, calls[i].timestamp)) Py_RETURN_NONE;
    PyObject *result = NULL;
    Agents agents = {{NULL, NULL, 0}, NULL, 0};
    Table keys = {NULL, NULL, 0}, first_use = {NULL, NULL, 0};
    Py_ssize_t *chosen = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(lines ? lines : 1));
    Span *start = PyMem_Malloc(sizeof(Span) * (size_t)(lines ? lines : 1));
    int64_t *most = PyMem_Malloc(sizeof(int64_t) * (size_t)(lines ? lines : 1));
    Py_ssize_t *tool_rows = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(uses ? uses : 1));
    Span *tool_end = PyMem_Malloc(sizeof(Span) * (size_t)(uses ? uses : 1));
    agents.names = PyMem_Calloc((size_t)(lines ? lines : 1), sizeof(PyObject *));
    if (chosen == NULL || start == NULL || most == NULL || tool_rows == NULL || tool_end == NULL ||
        agents.names == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if (table_init(&agents.ids, lines) || table_init(&keys, lines) || table_init(&first_use, uses))
        goto fail;

    /* agent names: `agent_name(agentId, session)` once per agentId, with the session of its first line */
    for (Py_ssize_t i = 0; i < lines; i++) {
        if (calls[i].agent_id.off < 0 || table_get_or_add(&agents.ids, L, calls[i].agent_id, agents.count) >= 0)
            continue;
        PyObject *id = span_text(L, calls[i].agent_id), *session = id ? span_text(L, calls[i].session) : NULL;
        PyObject *name = session ? PyObject_CallFunctionObjArgs(agent_name, id, session, NULL) : NULL;
        Py_XDECREF(id);
        Py_XDECREF(session);
        agents.names[agents.count++] = name;
        if (name == NULL) goto fail;
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "merge: agent_name must return a str");
            goto fail;
        }
    }

    /* calls: one slot per key; per slot: most output so far, line held, earliest start of the held lines */
    Py_ssize_t slots = 0, merged = 0;
    for (Py_ssize_t i = 0; i < lines; i++) {
        const Call *c = &calls[i];
        int64_t output = c->has_usage ? c->output : 0;
        Py_ssize_t s = c->key.off < 0 ? -1 : table_get_or_add(&keys, L, c->key, slots);
        if (s < 0) { /* a new call */
            most[slots] = output;
            chosen[slots] = i;
            start[slots] = c->timestamp;
            slots++;
            continue;
        }
        merged++;
        if (output < most[s]) continue;
        most[s] = output;
        chosen[s] = i;
        if (c->timestamp.off < 0) continue;
        if (start[s].off < 0 || span_cmp(L, c->timestamp, start[s]) < 0) start[s] = c->timestamp;
    }

    /* tools: the first use of each id, ended by the first later result not before it */
    Py_ssize_t tools = 0;
    for (Py_ssize_t t = 0; t < uses; t++) {
        if (table_get_or_add(&first_use, L, use[t].id, tools) >= 0) continue;
        tool_end[tools] = NONE;
        tool_rows[tools++] = t;
    }
    for (Py_ssize_t r = 0; r < n_results; r++) /* every result's time, as the reference reads each */
        if (!span_time_ok(L, res[r].time)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    for (Py_ssize_t r = 0; r < n_results && tools; r++) {
        Py_ssize_t k = table_find(&first_use, L, res[r].id);
        if (k < 0 || tool_end[k].off >= 0 || res[r].time.off < 0) continue;
        Py_ssize_t row = use[tool_rows[k]].at;
        if (row >= res[r].at) continue;
        Span begin = calls[row].timestamp, end = res[r].time;
        /* as the reference: a tool without a start (or starting at 0 us) ends at its result */
        int no_start = begin.off < 0 || (begin.n == 24 && memcmp(TEXT(L, begin), "1970-01-01T00:00:00.000Z", 24) == 0);
        if (no_start || span_cmp(L, begin, end) <= 0) tool_end[k] = end;
    }
    if (!slots && !tools) {
        result = Py_BuildValue("(nnn)", merged, rows->rows, rows->rows);
        goto done;
    }

    /* the rows: the calls, then the tools, each in order of first appearance */
    Py_ssize_t before = rows->rows;
    for (Py_ssize_t k = 0; k < slots; k++) {
        const Call *c = &calls[chosen[k]];
        int usage = c->has_usage;
        PyObject *agent = agent_of(&agents, L, c, main_agent, sidechain_agent);
        if (put_text(rows, C_SOURCE, source) || put_value(rows, C_LINE, c->line, 1) ||
            put_cstr(rows, C_FORMAT, "claude-code") || put_span(rows, C_RECORD_ID, L, c->key) ||
            put_span(rows, C_TRACE_ID, L, c->session) || put_span(rows, C_SPAN_ID, L, c->message_id) ||
            put_cstr(rows, C_PARENT_ID, NULL) || put_cstr(rows, C_KIND, "llm") || put_text(rows, C_AGENT, agent) ||
            put_text(rows, C_TENANT, tenant) || put_cstr(rows, C_TOOL, NULL) ||
            put_span_time(rows, C_START, L, start[k]) || put_span_time(rows, C_END, L, NONE) ||
            put_cstr(rows, C_PROVIDER, "anthropic") || put_span(rows, C_MODEL, L, c->model) ||
            put_span(rows, C_TIER, L, c->tier) ||
            put_value(rows, C_INPUT, c->input + c->cache_read + c->cache_write, usage) ||
            put_value(rows, C_CACHE_READ, c->cache_read, usage) ||
            put_value(rows, C_CACHE_WRITE, c->cache_write, usage) ||
            put_value(rows, C_CACHE_WRITE_1H, c->write_1h, usage && c->has_1h) ||
            put_value(rows, C_OUTPUT, c->output, usage) || put_cstr(rows, C_USAGE_SOURCE, usage ? "reported" : NULL) ||
            put_word(rows, C_COST, &c->cost, c->has_cost) || put_flag(rows, C_SIDECHAIN, c->sidechain))
            goto fail_rows;
        rows->rows++;
    }
    for (Py_ssize_t k = 0; k < tools; k++) {
        const Use *u = &use[tool_rows[k]];
        const Call *c = &calls[u->at];
        PyObject *agent = agent_of(&agents, L, c, main_agent, sidechain_agent);
        if (put_text(rows, C_SOURCE, source) || put_value(rows, C_LINE, c->line, 1) ||
            put_cstr(rows, C_FORMAT, "claude-code") || put_span(rows, C_RECORD_ID, L, u->id) ||
            put_span(rows, C_TRACE_ID, L, c->session) || put_span(rows, C_SPAN_ID, L, u->id) ||
            put_span(rows, C_PARENT_ID, L, c->message_id) || put_cstr(rows, C_KIND, "tool") ||
            put_text(rows, C_AGENT, agent) || put_text(rows, C_TENANT, tenant) ||
            put_span(rows, C_TOOL, L, u->name) || put_span_time(rows, C_START, L, c->timestamp) ||
            put_span_time(rows, C_END, L, tool_end[k]) || put_cstr(rows, C_PROVIDER, NULL) ||
            put_cstr(rows, C_MODEL, NULL) || put_cstr(rows, C_TIER, NULL) || put_value(rows, C_INPUT, 0, 0) ||
            put_value(rows, C_CACHE_READ, 0, 0) || put_value(rows, C_CACHE_WRITE, 0, 0) ||
            put_value(rows, C_CACHE_WRITE_1H, 0, 0) || put_value(rows, C_OUTPUT, 0, 0) ||
            put_cstr(rows, C_USAGE_SOURCE, NULL) || put_value(rows, C_COST, 0, 0) ||
            put_flag(rows, C_SIDECHAIN, c->sidechain))
            goto fail_rows;
        rows->rows++;
    }
    result = Py_BuildValue("(nnn)", merged, before, rows->rows);
    goto done;
fail_rows:
    rows_truncate(rows, before);
fail:
    result = NULL;
done:
    agents_free(&agents);
    table_free(&keys);
    table_free(&first_use);
    PyMem_Free(chosen);
    PyMem_Free(start);
    PyMem_Free(most);
    PyMem_Free(tool_rows);
    PyMem_Free(tool_end);
    return result;
}
static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"merge", merge, METH_VARARGS, merge_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_claude_scan",
    .m_doc = "The compiled line scanner of costscope's Claude Code fast path.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__claude_scan(void) {
    if (PyType_Ready(&RowsType) < 0 || PyType_Ready(&LinesType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Rows", (PyObject *)&RowsType) < 0 ||
        PyModule_AddObjectRef(m, "Lines", (PyObject *)&LinesType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
