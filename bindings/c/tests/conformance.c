/*
 * Runs the conformance files through the C API: the scenarios that tests/support/conformance_text.rs writes from
 * conformance/login-vectors.json and conformance/machine-transcripts.json (the format is described there).
 * For each step it gives the input, polls once, renders what the C API shows in the same line format, and compares.
 *
 *   conformance FILE.txt...     (run from the repository root: key paths are relative to it)
 *
 * Prints each failure, then `conformance: N passed, M failed`; exits 1 when any failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symphony_auth.h"

/* ----- Growable strings and lists ----- */

typedef struct {
    char *text;
    size_t len, cap;
} Buf;

static void die(const char *what) {
    fprintf(stderr, "conformance: %s\n", what);
    exit(2);
}

static void buf_add_bytes(Buf *b, const char *bytes, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1) cap *= 2;
        b->text = realloc(b->text, cap);
        if (!b->text) die("out of memory");
        b->cap = cap;
    }
    memcpy(b->text + b->len, bytes, n);
    b->len += n;
    b->text[b->len] = '\0';
}

static void buf_add(Buf *b, const char *s) { buf_add_bytes(b, s, strlen(s)); }

static void buf_addf(Buf *b, const char *format, ...) {
    char small[128];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= sizeof small) die("formatted field too long");
    buf_add_bytes(b, small, (size_t)n);
}

/* A field of the line format: bytes outside '!'..'~', and % " ~ *, as %XX; empty as ""; absent (NULL) as ~. */
static void buf_field(Buf *b, const uint8_t *bytes, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    buf_add(b, " ");
    if (!bytes) { buf_add(b, "~"); return; }
    if (n == 0) { buf_add(b, "\"\""); return; }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = bytes[i];
        if (c >= '!' && c <= '~' && !strchr("%\"~*", c)) {
            char one = (char)c;
            buf_add_bytes(b, &one, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_add_bytes(b, esc, 3);
        }
    }
}

static void buf_view(Buf *b, SymphonyAuthBytes view) { buf_field(b, view.ptr, view.len); }

typedef struct {
    char **items;
    size_t len, cap;
} List;

static void list_push(List *l, const char *s) {
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = realloc(l->items, l->cap * sizeof *l->items);
        if (!l->items) die("out of memory");
    }
    l->items[l->len] = strdup(s);
    if (!l->items[l->len]) die("out of memory");
    l->len++;
}

static void list_clear(List *l) {
    for (size_t i = 0; i < l->len; i++) free(l->items[i]);
    l->len = 0;
}

/* Decodes a field in place; returns its length, or -1 for the absent value `~`. */
static long decode(char *field) {
    if (strcmp(field, "~") == 0) return -1;
    if (strcmp(field, "\"\"") == 0) { field[0] = '\0'; return 0; }
    size_t out = 0;
    for (size_t i = 0; field[i]; i++) {
        if (field[i] == '%' && field[i + 1] && field[i + 2]) {
            char hex[3] = {field[i + 1], field[i + 2], '\0'};
            field[out++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            field[out++] = field[i];
        }
    }
    field[out] = '\0';
    return (long)out;
}

/* ----- Names of the C API's codes, as the line format writes them ----- */

static const char *endpoint_name(SymphonyAuthEndpoint e) {
    switch (e) {
        case SYMPHONY_AUTH_ENDPOINT_RSA_SESSION: return "RsaSession";
        case SYMPHONY_AUTH_ENDPOINT_RSA_KEY_MANAGER: return "RsaKeyManager";
        case SYMPHONY_AUTH_ENDPOINT_CERTIFICATE_SESSION: return "CertificateSession";
        case SYMPHONY_AUTH_ENDPOINT_CERTIFICATE_KEY_MANAGER: return "CertificateKeyManager";
        case SYMPHONY_AUTH_ENDPOINT_AGENT_VERSION: return "AgentVersion";
        default: return "?";
    }
}

static const char *kind_name(SymphonyAuthTransportKind k) {
    switch (k) {
        case SYMPHONY_AUTH_TRANSPORT_KIND_TIMEOUT: return "timeout";
        case SYMPHONY_AUTH_TRANSPORT_KIND_CONNECT: return "connect";
        case SYMPHONY_AUTH_TRANSPORT_KIND_RESET: return "reset";
        case SYMPHONY_AUTH_TRANSPORT_KIND_TLS: return "tls";
        case SYMPHONY_AUTH_TRANSPORT_KIND_OTHER: return "other";
        case SYMPHONY_AUTH_TRANSPORT_KIND_REFUSED: return "refused";
        default: return "?";
    }
}

static const char *problem_name(SymphonyAuthProblem p) {
    switch (p) {
        case SYMPHONY_AUTH_PROBLEM_UNEXPECTED_STATUS: return "UnexpectedStatus";
        case SYMPHONY_AUTH_PROBLEM_BODY_TOO_LARGE: return "BodyTooLarge";
        case SYMPHONY_AUTH_PROBLEM_NOT_JSON: return "NotJson";
        case SYMPHONY_AUTH_PROBLEM_MISSING_TOKEN: return "MissingToken";
        case SYMPHONY_AUTH_PROBLEM_EMPTY_TOKEN: return "EmptyToken";
        case SYMPHONY_AUTH_PROBLEM_TOKEN_NOT_A_HEADER_VALUE: return "TokenNotAHeaderValue";
        default: return "?";
    }
}

static const char *yes(bool b) { return b ? "true" : "false"; }

static void render_cause(Buf *b, SymphonyAuthCause cause) {
    if (cause.kind == SYMPHONY_AUTH_CAUSE_KIND_STATUS) buf_addf(b, " status %u", (unsigned)cause.status);
    else if (cause.kind == SYMPHONY_AUTH_CAUSE_KIND_TRANSPORT) buf_addf(b, " transport %s", kind_name(cause.transport_kind));
    else buf_add(b, " ?");
}

static void render_error(Buf *b, SymphonyAuthLoginError e) {
    const char *ep = endpoint_name(e.endpoint);
    switch (e.error_class) {
        case SYMPHONY_AUTH_ERROR_CLASS_REJECTED:
            buf_addf(b, " rejected %s %u", ep, (unsigned)e.status);
            buf_view(b, e.server_message);
            if (e.has_clock_offset) buf_addf(b, " %lld", (long long)e.clock_offset_secs);
            else buf_add(b, " ~");
            break;
        case SYMPHONY_AUTH_ERROR_CLASS_UNAVAILABLE:
            buf_addf(b, " unavailable %s %u", ep, (unsigned)e.attempts);
            render_cause(b, e.cause);
            break;
        case SYMPHONY_AUTH_ERROR_CLASS_TRANSPORT:
            buf_addf(b, " transport %s %s", ep, kind_name(e.cause.transport_kind));
            break;
        case SYMPHONY_AUTH_ERROR_CLASS_PROTOCOL:
            buf_addf(b, " protocol %s %u %s", ep, (unsigned)e.status, problem_name(e.problem));
            buf_view(b, e.body_prefix);
            break;
        case SYMPHONY_AUTH_ERROR_CLASS_SIGNING: buf_add(b, " signing"); break;
        default: buf_add(b, " ?"); break;
    }
}

/* ----- One scenario at a time ----- */

typedef struct {
    SymphonyAuthConfig *config;
    SymphonyAuthAuthenticator *auth;
    SymphonyAuthOutput *to_sign; /* the last SIGN output, for a `sign` input */
    unsigned long long seed;
    char name[512];
    int step;
    bool failed;
    List rendered;
} Run;

static void fail(Run *run, const char *format, ...) {
    va_list args;
    if (!run->failed) printf("FAIL %s\n", run->name);
    run->failed = true;
    printf("  step %d: ", run->step);
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    printf("\n");
}

static void check(Run *run, SymphonyAuthStatus status, const char *call, SymphonyAuthBytes message) {
    if (status != SYMPHONY_AUTH_STATUS_OK)
        fail(run, "%s returned %u: %.*s", call, (unsigned)status, (int)message.len, (const char *)message.ptr);
}

static void finish(Run *run, int *passed, int *failed) {
    if (run->config) {
        if (run->failed) (*failed)++;
        else (*passed)++;
    }
    symphony_auth_output_free(run->to_sign);
    symphony_auth_authenticator_free(run->auth);
    symphony_auth_config_free(run->config);
    list_clear(&run->rendered);
    run->to_sign = NULL;
    run->auth = NULL;
    run->config = NULL;
}

static unsigned long long number(const char *field) { return strtoull(field, NULL, 10); }

static void configure(Run *run, char **f, int n) {
    SymphonyAuthConfig *c = run->config;
    SymphonyAuthStatus status = SYMPHONY_AUTH_STATUS_OK;
    const char *key = f[1];
    if (n < 2) { fail(run, "config line without a key"); return; }
    long len = n > 2 ? decode(f[2]) : 0;
    if (strcmp(key, "method") == 0) {
        if (strcmp(f[2], "certificate") == 0) status = symphony_auth_config_set_certificate_login(c);
    } else if (strcmp(key, "key") == 0) {
        FILE *file = fopen(f[2], "rb");
        if (!file) { fail(run, "cannot open the key %s", f[2]); return; }
        uint8_t pem[8192];
        size_t got = fread(pem, 1, sizeof pem, file);
        fclose(file);
        status = symphony_auth_config_set_rsa_key_pem(c, pem, got);
        memset(pem, 0, sizeof pem);
    } else if (strcmp(key, "username") == 0) {
        status = symphony_auth_config_set_username(c, (const uint8_t *)f[2], (size_t)len);
    } else if (strcmp(key, "url") == 0 && n == 4) {
        uint32_t service = strcmp(f[2], "pod") == 0 ? SYMPHONY_AUTH_SERVICE_POD
                         : strcmp(f[2], "key_manager") == 0 ? SYMPHONY_AUTH_SERVICE_KEY_MANAGER
                         : strcmp(f[2], "session_auth") == 0 ? SYMPHONY_AUTH_SERVICE_SESSION_AUTH
                         : SYMPHONY_AUTH_SERVICE_AGENT;
        long url_len = decode(f[3]);
        status = symphony_auth_config_set_url(c, service, (const uint8_t *)f[3], (size_t)url_len);
    } else if (strcmp(key, "insecure_http") == 0) {
        status = symphony_auth_config_allow_insecure_http(c);
    } else if (strcmp(key, "parallel") == 0) {
        status = symphony_auth_config_set_parallel_login(c, strcmp(f[2], "true") == 0);
    } else if (strcmp(key, "key_manager") == 0) {
        uint32_t policy = strcmp(f[2], "always") == 0 ? SYMPHONY_AUTH_KEY_MANAGER_POLICY_ALWAYS
                        : strcmp(f[2], "never") == 0 ? SYMPHONY_AUTH_KEY_MANAGER_POLICY_NEVER
                        : SYMPHONY_AUTH_KEY_MANAGER_POLICY_AUTO;
        status = symphony_auth_config_set_key_manager_policy(c, policy);
    } else if (strcmp(key, "jwt_lifetime_secs") == 0) {
        status = symphony_auth_config_set_jwt_lifetime_secs(c, number(f[2]));
    } else if (strcmp(key, "retry") == 0 && n == 7) {
        status = symphony_auth_config_set_retry(c, (uint32_t)number(f[2]), number(f[3]), strtod(f[4], NULL),
                                                number(f[5]), strtod(f[6], NULL));
    } else if (strcmp(key, "cool_down") == 0 && n == 4) {
        status = symphony_auth_config_set_cool_down(c, number(f[2]), number(f[3]));
    } else if (strcmp(key, "seed") == 0) {
        run->seed = number(f[2]);
    } else {
        fail(run, "unknown config line `%s`", key);
    }
    check(run, status, key, symphony_auth_config_last_error(c));
}

/* Applies one input; pushes its `result` line, if it has one. */
static void apply(Run *run, uint64_t at, char **f, int n) {
    SymphonyAuthAuthenticator *a = run->auth;
    const char *input = f[2];
    Buf line = {0};
    if (strcmp(input, "poll") == 0) {
    } else if (strcmp(input, "sign") == 0) {
        SymphonyAuthSignature *signature = NULL;
        if (!run->to_sign) { fail(run, "`sign` without a SIGN output before it"); return; }
        check(run, symphony_auth_output_sign(run->to_sign, &signature), "sign",
              symphony_auth_output_last_error(run->to_sign));
        check(run, symphony_auth_authenticator_supply_signature(a, signature, at), "supply_signature",
              symphony_auth_authenticator_last_error(a));
        symphony_auth_output_free(run->to_sign);
        run->to_sign = NULL;
    } else if (strcmp(input, "sign_fails") == 0 && n == 4) {
        long len = decode(f[3]);
        symphony_auth_output_free(run->to_sign);
        run->to_sign = NULL;
        check(run, symphony_auth_authenticator_supply_sign_failure(a, (const uint8_t *)f[3], (size_t)len, at),
              "supply_sign_failure", symphony_auth_authenticator_last_error(a));
    } else if (strcmp(input, "response") == 0 && n >= 6 && n % 2 == 0) {
        SymphonyAuthHeader headers[16];
        size_t count = 0;
        long body_len = decode(f[5]);
        for (int i = 6; i + 1 < n && count < 16; i += 2, count++) {
            long name_len = decode(f[i]), value_len = decode(f[i + 1]);
            headers[count].name = (SymphonyAuthBytes){(const uint8_t *)f[i], (size_t)name_len};
            headers[count].value = (SymphonyAuthBytes){(const uint8_t *)f[i + 1], (size_t)value_len};
        }
        SymphonyAuthStatus status = symphony_auth_authenticator_handle_response(
            a, number(f[3]), (uint16_t)number(f[4]), headers, count, (const uint8_t *)f[5], (size_t)body_len, at);
        if (status == SYMPHONY_AUTH_STATUS_USAGE) buf_add(&line, "result unknown_request");
        else if (status == SYMPHONY_AUTH_STATUS_OK) buf_add(&line, "result accepted");
        else check(run, status, "handle_response", symphony_auth_authenticator_last_error(a));
    } else if (strcmp(input, "failure") == 0 && n == 5) {
        const char *k = f[4];
        uint32_t kind = strcmp(k, "timeout") == 0 ? SYMPHONY_AUTH_TRANSPORT_KIND_TIMEOUT
                      : strcmp(k, "connect") == 0 ? SYMPHONY_AUTH_TRANSPORT_KIND_CONNECT
                      : strcmp(k, "reset") == 0 ? SYMPHONY_AUTH_TRANSPORT_KIND_RESET
                      : strcmp(k, "tls") == 0 ? SYMPHONY_AUTH_TRANSPORT_KIND_TLS
                      : SYMPHONY_AUTH_TRANSPORT_KIND_OTHER;
        SymphonyAuthStatus status =
            symphony_auth_authenticator_handle_failure(a, number(f[3]), kind, (const uint8_t *)"transcript", 10, at);
        if (status == SYMPHONY_AUTH_STATUS_USAGE) buf_add(&line, "result unknown_request");
        else if (status == SYMPHONY_AUTH_STATUS_OK) buf_add(&line, "result accepted");
        else check(run, status, "handle_failure", symphony_auth_authenticator_last_error(a));
    } else if (strcmp(input, "refresh") == 0) {
        bool began = false;
        check(run, symphony_auth_authenticator_refresh(a, at, &began), "refresh",
              symphony_auth_authenticator_last_error(a));
        buf_addf(&line, "result %s", yes(began));
    } else if (strcmp(input, "unauthorized") == 0 && n == 4) {
        SymphonyAuthUnauthorized outcome = SYMPHONY_AUTH_UNAUTHORIZED_OTHER;
        uint64_t current = 0;
        SymphonyAuthStatus status = symphony_auth_authenticator_report_unauthorized(a, number(f[3]), &outcome, &current);
        if (status == SYMPHONY_AUTH_STATUS_USAGE) buf_add(&line, "result unknown_generation");
        else if (status != SYMPHONY_AUTH_STATUS_OK) check(run, status, "report_unauthorized", symphony_auth_authenticator_last_error(a));
        else if (outcome == SYMPHONY_AUTH_UNAUTHORIZED_EXPIRED) buf_add(&line, "result expired");
        else if (outcome == SYMPHONY_AUTH_UNAUTHORIZED_ALREADY_EXPIRED) buf_add(&line, "result already_expired");
        else if (outcome == SYMPHONY_AUTH_UNAUTHORIZED_STALE) buf_addf(&line, "result stale %llu", (unsigned long long)current);
        else buf_add(&line, "result ?");
    } else if (strcmp(input, "timeout") == 0) {
        check(run, symphony_auth_authenticator_handle_timeout(a, at), "handle_timeout",
              symphony_auth_authenticator_last_error(a));
    } else if (strcmp(input, "abandon") == 0) {
        check(run, symphony_auth_authenticator_abandon_requests(a, at), "abandon_requests",
              symphony_auth_authenticator_last_error(a));
    } else {
        fail(run, "unknown input `%s` with %d fields", input, n);
    }
    if (line.len) list_push(&run->rendered, line.text);
    free(line.text);
}

static int by_name(const void *x, const void *y) {
    const SymphonyAuthHeader *a = x, *b = y;
    size_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
    int c = memcmp(a->name.ptr, b->name.ptr, n);
    return c ? c : (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

static void render_output(Run *run, SymphonyAuthOutput *out) {
    Buf line = {0};
    switch (symphony_auth_output_kind(out)) {
        case SYMPHONY_AUTH_OUTPUT_KIND_SIGN:
            buf_addf(&line, "output sign %llu", (unsigned long long)symphony_auth_output_exp(out));
            buf_view(&line, symphony_auth_output_signing_input(out));
            break;
        case SYMPHONY_AUTH_OUTPUT_KIND_SEND: {
            size_t count = symphony_auth_output_request_count(out);
            buf_addf(&line, "output send %zu", count);
            for (size_t i = 0; i < count; i++) {
                SymphonyAuthRequest r;
                check(run, symphony_auth_output_request(out, i, &r), "output_request", symphony_auth_output_last_error(out));
                list_push(&run->rendered, line.text);
                line.len = 0;
                buf_addf(&line, "request %llu %s", (unsigned long long)r.id, endpoint_name(r.endpoint));
                buf_view(&line, r.method);
                buf_view(&line, r.url);
                buf_view(&line, r.body);
                SymphonyAuthHeader sorted[32];
                size_t n = r.header_count < 32 ? r.header_count : 32;
                memcpy(sorted, r.headers, n * sizeof *sorted);
                qsort(sorted, n, sizeof *sorted, by_name);
                for (size_t h = 0; h < n; h++) {
                    list_push(&run->rendered, line.text);
                    line.len = 0;
                    buf_add(&line, "header");
                    buf_view(&line, sorted[h].name);
                    buf_view(&line, sorted[h].value);
                }
            }
            break;
        }
        case SYMPHONY_AUTH_OUTPUT_KIND_AWAIT_ANSWERS: buf_add(&line, "output await"); break;
        case SYMPHONY_AUTH_OUTPUT_KIND_WAIT_UNTIL:
            buf_addf(&line, "output wait_until %llu", (unsigned long long)symphony_auth_output_wait_until(out));
            break;
        case SYMPHONY_AUTH_OUTPUT_KIND_DONE: {
            SymphonyAuthTokens *tokens = NULL;
            if (symphony_auth_output_tokens(out, &tokens) == SYMPHONY_AUTH_STATUS_OK) {
                buf_addf(&line, "output done tokens %llu", (unsigned long long)symphony_auth_tokens_generation(tokens));
                buf_view(&line, symphony_auth_tokens_session(tokens));
                buf_view(&line, symphony_auth_tokens_key_manager(tokens));
                buf_view(&line, symphony_auth_tokens_authorization(tokens));
                buf_addf(&line, " %s", yes(symphony_auth_tokens_simplified_key_delivery(tokens)));
                symphony_auth_tokens_free(tokens);
            } else {
                buf_add(&line, "output done error");
                render_error(&line, symphony_auth_output_error(out));
            }
            break;
        }
        default: buf_add(&line, "output ?"); break;
    }
    list_push(&run->rendered, line.text);
    free(line.text);
}

static void render_events_and_state(Run *run) {
    Buf line = {0};
    for (;;) {
        SymphonyAuthEvent *event = NULL;
        check(run, symphony_auth_authenticator_poll_event(run->auth, &event), "poll_event",
              symphony_auth_authenticator_last_error(run->auth));
        if (!event) break;
        SymphonyAuthEventInfo e = symphony_auth_event_info(event);
        line.len = 0;
        switch (e.kind) {
            case SYMPHONY_AUTH_EVENT_KIND_LOGIN_STARTED: buf_addf(&line, "event login_started %s", yes(e.refresh)); break;
            case SYMPHONY_AUTH_EVENT_KIND_RETRY_SCHEDULED:
                buf_addf(&line, "event retry_scheduled %s %u %u %llu", endpoint_name(e.endpoint), (unsigned)e.attempt,
                         (unsigned)e.max_attempts, (unsigned long long)e.delay_ms);
                render_cause(&line, e.cause);
                break;
            case SYMPHONY_AUTH_EVENT_KIND_AUTHENTICATED:
                buf_addf(&line, "event authenticated %llu %s", (unsigned long long)e.generation,
                         e.key_manager == SYMPHONY_AUTH_KEY_MANAGER_OUTCOME_OBTAINED ? "obtained"
                         : e.key_manager == SYMPHONY_AUTH_KEY_MANAGER_OUTCOME_SKIPPED_BY_SIMPLIFIED_KEY_DELIVERY
                             ? "skipped_by_simplified_key_delivery"
                         : e.key_manager == SYMPHONY_AUTH_KEY_MANAGER_OUTCOME_DISABLED ? "disabled" : "?");
                break;
            case SYMPHONY_AUTH_EVENT_KIND_LOGIN_FAILED:
                buf_add(&line, "event login_failed");
                render_error(&line, e.error);
                buf_addf(&line, " %llu", (unsigned long long)e.cool_down_ms);
                break;
            case SYMPHONY_AUTH_EVENT_KIND_EXPIRED:
                buf_addf(&line, "event expired %llu", (unsigned long long)e.generation);
                break;
            default: buf_add(&line, "event ?"); break;
        }
        symphony_auth_event_free(event);
        list_push(&run->rendered, line.text);
    }
    SymphonyAuthState s;
    check(run, symphony_auth_authenticator_state(run->auth, &s), "state", symphony_auth_authenticator_last_error(run->auth));
    line.len = 0;
    switch (s.kind) {
        case SYMPHONY_AUTH_STATE_KIND_NEEDS_SESSION: buf_addf(&line, "state needs_session %s", yes(s.logging_in)); break;
        case SYMPHONY_AUTH_STATE_KIND_NEEDS_KEY_MANAGER: buf_add(&line, "state needs_key_manager"); break;
        case SYMPHONY_AUTH_STATE_KIND_READY:
            buf_addf(&line, "state ready %llu %s", (unsigned long long)s.generation, yes(s.logging_in));
            break;
        case SYMPHONY_AUTH_STATE_KIND_EXPIRED:
            buf_addf(&line, "state expired %llu %s", (unsigned long long)s.generation, yes(s.logging_in));
            break;
        default: buf_add(&line, "state ?"); break;
    }
    list_push(&run->rendered, line.text);
    free(line.text);
}

static void step(Run *run, char **f, int n) {
    run->step++;
    list_clear(&run->rendered);
    if (n < 3) { fail(run, "step line too short"); return; }
    if (!run->auth) {
        SymphonyAuthStatus status = symphony_auth_authenticator_new(run->config, run->seed, &run->auth);
        check(run, status, "authenticator_new", symphony_auth_config_last_error(run->config));
        if (!run->auth) return;
    }
    uint64_t at = number(f[1]);
    apply(run, at, f, n);
    SymphonyAuthOutput *out = NULL;
    check(run, symphony_auth_authenticator_poll_output(run->auth, at, &out), "poll_output",
          symphony_auth_authenticator_last_error(run->auth));
    if (!out) return;
    render_output(run, out);
    if (symphony_auth_output_kind(out) == SYMPHONY_AUTH_OUTPUT_KIND_SIGN) {
        symphony_auth_output_free(run->to_sign);
        run->to_sign = out;
    } else {
        symphony_auth_output_free(out);
    }
    render_events_and_state(run);
}

/* Which category a rendered line belongs to. */
static const char *category(const char *line) {
    if (!strncmp(line, "result ", 7)) return "result";
    if (!strncmp(line, "output ", 7) || !strncmp(line, "request ", 8) || !strncmp(line, "header ", 7)) return "output";
    if (!strncmp(line, "event ", 6)) return "events";
    return "state";
}

static bool in_categories(const char *line, const char *categories) {
    const char *c = category(line);
    size_t n = strlen(c);
    for (const char *p = categories; (p = strstr(p, c)); p += n)
        if ((p == categories || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

/* `line` is `prefix`, or `prefix` followed by more fields. */
static bool starts_with_fields(const char *line, const char *prefix) {
    size_t n = strlen(prefix);
    return strncmp(line, prefix, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

/* `pattern` matches `line`: equal, or `pattern` ends with " *" and `line` is its prefix or continues it. */
static bool matches(const char *pattern, const char *line) {
    size_t n = strlen(pattern);
    if (n >= 2 && strcmp(pattern + n - 2, " *") == 0) {
        char *prefix = strndup(pattern, n - 2);
        if (!prefix) die("out of memory");
        bool found = starts_with_fields(line, prefix);
        free(prefix);
        return found;
    }
    return strcmp(pattern, line) == 0;
}

static void compare(Run *run, bool exact, const char *categories, const List *expected) {
    List shown = {0};
    for (size_t i = 0; i < run->rendered.len; i++)
        if (in_categories(run->rendered.items[i], categories)) list_push(&shown, run->rendered.items[i]);
    bool ok = true;
    if (exact) {
        ok = shown.len == expected->len;
        for (size_t i = 0; ok && i < shown.len; i++) ok = strcmp(shown.items[i], expected->items[i]) == 0;
    } else {
        for (size_t i = 0; ok && i < expected->len; i++) {
            const char *want = expected->items[i];
            bool found = false;
            bool negative = want[0] == '!';
            for (size_t j = 0; !found && j < shown.len; j++)
                found = negative ? starts_with_fields(shown.items[j], want + 1) : matches(want, shown.items[j]);
            ok = negative ? !found : found;
        }
    }
    if (!ok) {
        fail(run, "%s %s: expected", exact ? "exact" : "subset", categories);
        for (size_t i = 0; i < expected->len; i++) printf("      %s\n", expected->items[i]);
        printf("    the C API showed\n");
        for (size_t i = 0; i < shown.len; i++) printf("      %s\n", shown.items[i]);
    }
    list_clear(&shown);
    free(shown.items);
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    Run run = {0};
    List expected = {0};
    char *raw = NULL;
    size_t cap = 0;
    if (argc < 2) die("usage: conformance FILE.txt...");
    for (int arg = 1; arg < argc; arg++) {
        FILE *in = fopen(argv[arg], "r");
        if (!in) die("cannot open an input file");
        bool in_expect = false, exact = false;
        char categories[64] = "";
        ssize_t got;
        while ((got = getline(&raw, &cap, in)) > 0) {
            if (raw[got - 1] == '\n') raw[--got] = '\0';
            if (in_expect) {
                if (strcmp(raw, "end") == 0) {
                    in_expect = false;
                    compare(&run, exact, categories, &expected);
                    list_clear(&expected);
                } else {
                    list_push(&expected, raw);
                }
                continue;
            }
            char *fields[64];
            int n = 0;
            char *save = NULL;
            for (char *t = strtok_r(raw, " ", &save); t && n < 64; t = strtok_r(NULL, " ", &save)) fields[n++] = t;
            if (n == 0) continue;
            if (strcmp(fields[0], "scenario") == 0 && n == 2) {
                finish(&run, &passed, &failed);
                run.config = symphony_auth_config_new();
                run.seed = 0;
                run.step = 0;
                run.failed = false;
                decode(fields[1]);
                snprintf(run.name, sizeof run.name, "%s", fields[1]);
            } else if (strcmp(fields[0], "config") == 0) {
                configure(&run, fields, n);
            } else if (strcmp(fields[0], "step") == 0) {
                step(&run, fields, n);
            } else if (strcmp(fields[0], "expect") == 0 && n == 3) {
                in_expect = true;
                exact = strcmp(fields[1], "exact") == 0;
                snprintf(categories, sizeof categories, "%s", fields[2]);
            } else {
                fail(&run, "unknown line `%s`", fields[0]);
            }
        }
        fclose(in);
    }
    finish(&run, &passed, &failed);
    free(raw);
    free(expected.items);
    free(run.rendered.items);
    printf("conformance: %d passed, %d failed\n", passed, failed);
    return failed || passed == 0 ? 1 : 0;
}
