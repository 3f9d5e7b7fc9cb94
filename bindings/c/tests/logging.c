/*
 * The log callback: logins driven from canned answers (a 503 and its retry, a 401 and the re-login, a rejected
 * login) through the C API, the lines the callback receives for them, and no secret in any line: not a token, not
 * the JWT the library signed (nor any `eyJ`), no run of 64 hex digits, no 16-character slice of the key.
 *
 *   logging KEY.pem      (fails when the library is built without its `tracing` feature)
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symphony_auth.h"

#define NOW 1700000000000ULL
#define USER "c.log.bot"

static int passed, failed;

static void expect(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "logging: FAILED: %s\n", what);
    }
}

/* What the callback received: one "LEVEL TARGET MESSAGE\n" per line. */
static struct {
    char *text;
    size_t len, cap;
    int calls;
} captured;

static void on_line(uint32_t level, const char *target, const char *message, void *user_data) {
    int *calls = user_data;
    (*calls)++;
    size_t need = strlen(target) + strlen(message) + 16;
    if (captured.len + need >= captured.cap) {
        size_t cap = (captured.cap + need) * 2;
        char *grown = realloc(captured.text, cap);
        if (!grown) abort();
        captured.text = grown;
        captured.cap = cap;
    }
    captured.len += (size_t)sprintf(captured.text + captured.len, "%u %s %s\n", level, target, message);
}

/* Whether a captured line holds every one of the NULL-terminated parts; its level in *level when not NULL. */
static int find_line(int *level, const char *first, ...) {
    const char *line = captured.text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char *copy = malloc(n + 1);
        if (!copy) abort();
        memcpy(copy, line, n);
        copy[n] = 0;
        int all = 1;
        va_list parts;
        va_start(parts, first);
        for (const char *part = first; part; part = va_arg(parts, const char *)) all = all && strstr(copy, part);
        va_end(parts);
        if (all && level) *level = atoi(copy);
        free(copy);
        if (all) return 1;
        line = end ? end + 1 : NULL;
    }
    return 0;
}

static void clear_lines(void) {
    captured.len = 0;
    if (captured.text) captured.text[0] = 0;
}

static int holds_window_of(const char *secret) {
    size_t n = strlen(secret), w = n < 16 ? n : 16;
    char window[17];
    for (size_t i = 0; i + w <= n; i++) {
        memcpy(window, secret + i, w);
        window[w] = 0;
        if (strstr(captured.text, window)) {
            fprintf(stderr, "logging: the lines hold \"%s\" of a secret:\n%s", window, captured.text);
            return 1;
        }
    }
    return 0;
}

static int holds_hex_run(void) {
    int run = 0;
    for (const char *c = captured.text; *c; c++) {
        run = isxdigit((unsigned char)*c) ? run + 1 : 0;
        if (run >= 64) return 1;
    }
    return 0;
}

static char jwt[4096]; /* the JWT of the last login request */

/* Drives the next login to its end from canned answers, draining events after every input: the session login
 * is answered with `statuses` in turn (the last one repeats), the key manager with 200. Returns the tokens'
 * generation, 0 when the login failed, -1 when the API misbehaved. */
static long long login(SymphonyAuthAuthenticator *auth, const uint16_t *statuses, size_t status_count,
                       const char *token) {
    uint64_t now = NOW, pending[8];
    SymphonyAuthEndpoint endpoints[8];
    size_t pending_count = 0, session_answers = 0;
    for (int steps = 0; steps < 100; steps++) {
        SymphonyAuthEvent *event = NULL;
        while (symphony_auth_authenticator_poll_event(auth, &event) == SYMPHONY_AUTH_STATUS_OK && event)
            symphony_auth_event_free(event);
        SymphonyAuthOutput *out = NULL;
        if (symphony_auth_authenticator_poll_output(auth, now, &out)) return -1;
        SymphonyAuthStatus status = SYMPHONY_AUTH_STATUS_OK;
        switch (symphony_auth_output_kind(out)) {
        case SYMPHONY_AUTH_OUTPUT_KIND_SIGN: {
            SymphonyAuthSignature *signature = NULL;
            status = symphony_auth_output_sign(out, &signature);
            if (!status) status = symphony_auth_authenticator_supply_signature(auth, signature, now);
            break;
        }
        case SYMPHONY_AUTH_OUTPUT_KIND_SEND:
            for (size_t i = 0; i < symphony_auth_output_request_count(out) && pending_count < 8; i++) {
                SymphonyAuthRequest r;
                if ((status = symphony_auth_output_request(out, i, &r))) break;
                const char *body = (const char *)r.body.ptr, *start = strstr(body, "\"token\":\"");
                if (start) {
                    start += strlen("\"token\":\"");
                    size_t n = strcspn(start, "\"");
                    if (n < sizeof jwt && start + n <= body + r.body.len) {
                        memcpy(jwt, start, n);
                        jwt[n] = 0;
                    }
                }
                pending[pending_count] = r.id;
                endpoints[pending_count++] = r.endpoint;
            }
            break;
        case SYMPHONY_AUTH_OUTPUT_KIND_AWAIT_ANSWERS: {
            if (pending_count == 0) return -1;
            uint64_t id = pending[0];
            SymphonyAuthEndpoint endpoint = endpoints[0];
            memmove(pending, pending + 1, (pending_count - 1) * sizeof pending[0]);
            memmove(endpoints, endpoints + 1, (pending_count - 1) * sizeof endpoints[0]);
            pending_count--;
            char body[128];
            uint16_t code = 200;
            if (endpoint == SYMPHONY_AUTH_ENDPOINT_RSA_SESSION) {
                code = statuses[session_answers < status_count ? session_answers : status_count - 1];
                session_answers++;
                snprintf(body, sizeof body, "{\"token\":\"%s\"}", code == 200 ? token : "none");
            } else {
                snprintf(body, sizeof body, "{\"token\":\"c-key-manager-token-canary\"}");
            }
            status = symphony_auth_authenticator_handle_response(auth, id, code, NULL, 0, (const uint8_t *)body,
                                                                 strlen(body), now);
            break;
        }
        case SYMPHONY_AUTH_OUTPUT_KIND_WAIT_UNTIL:
            now = symphony_auth_output_wait_until(out);
            break;
        case SYMPHONY_AUTH_OUTPUT_KIND_DONE: {
            SymphonyAuthTokens *tokens = NULL;
            long long generation = 0;
            if (symphony_auth_output_tokens(out, &tokens) == SYMPHONY_AUTH_STATUS_OK)
                generation = (long long)symphony_auth_tokens_generation(tokens);
            symphony_auth_tokens_free(tokens);
            symphony_auth_output_free(out);
            while (symphony_auth_authenticator_poll_event(auth, &event) == SYMPHONY_AUTH_STATUS_OK && event)
                symphony_auth_event_free(event);
            return generation;
        }
        default:
            status = SYMPHONY_AUTH_STATUS_INTERNAL;
        }
        symphony_auth_output_free(out);
        if (status) return -1;
    }
    return -1;
}

static int unauthorized(SymphonyAuthAuthenticator *auth, uint64_t generation) {
    return symphony_auth_authenticator_report_unauthorized(auth, generation, NULL, NULL) == SYMPHONY_AUTH_STATUS_OK;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: logging KEY.pem\n"); return 2; }
    FILE *file = fopen(argv[1], "rb");
    if (!file) { fprintf(stderr, "logging: cannot open %s\n", argv[1]); return 2; }
    static char pem[8192];
    size_t pem_len = fread(pem, 1, sizeof pem - 1, file);
    fclose(file);

    captured.text = calloc(1, 1);
    captured.cap = 1;
    if (!captured.text) abort();
    int calls = 0;
    SymphonyAuthStatus set = symphony_auth_set_log_callback(on_line, &calls, SYMPHONY_AUTH_LOG_LEVEL_INFO);
    expect(set == SYMPHONY_AUTH_STATUS_OK, "set_log_callback is OK (NOT_COMPILED: built without `tracing`)");
    expect(symphony_auth_set_log_callback(on_line, &calls, 42) == SYMPHONY_AUTH_STATUS_INVALID_ARGUMENT,
           "a level outside SymphonyAuthLogLevel is INVALID_ARGUMENT");

    SymphonyAuthConfig *config = symphony_auth_config_new();
    const char *pod = "https://acme.symphony.com";
    SymphonyAuthAuthenticator *auth = NULL;
    if (symphony_auth_config_set_url(config, SYMPHONY_AUTH_SERVICE_POD, (const uint8_t *)pod, strlen(pod)) ||
        symphony_auth_config_set_username(config, (const uint8_t *)USER, strlen(USER)) ||
        symphony_auth_config_set_rsa_key_pem(config, (const uint8_t *)pem, pem_len) ||
        symphony_auth_authenticator_new(config, 42, &auth)) {
        SymphonyAuthBytes m = symphony_auth_config_last_error(config);
        fprintf(stderr, "logging: %.*s\n", (int)m.len, (const char *)m.ptr);
        return 1;
    }
    symphony_auth_config_free(config);

    /* A 503 and its retry; a 401 on the tokens and the re-login; another 401 and a rejected re-login. */
    const uint16_t retried[] = {503, 200}, ok[] = {200}, rejected[] = {401};
    expect(login(auth, retried, 2, "c-session-token-canary-1") == 1, "first login: generation 1");
    expect(unauthorized(auth, 1), "401 on generation 1");
    expect(login(auth, ok, 1, "c-session-token-canary-2") == 2, "re-login: generation 2");
    expect(unauthorized(auth, 2), "401 on generation 2");
    expect(login(auth, rejected, 1, "never") == 0, "a rejected login fails");

    int level = -1;
    expect(calls > 0, "the callback was called");
    expect(find_line(&level, " symphony_auth_core::trace login{username=\"" USER "\" method=\"rsa\"",
                     "session_endpoint=\"https://acme.symphony.com/login/pubkey/authenticate\"",
                     "login started reason=\"initial\"", NULL) && level == SYMPHONY_AUTH_LOG_LEVEL_INFO,
           "login started, with the username, method and endpoint of its span, at INFO");
    expect(find_line(&level, "retry scheduled", "status=503", "attempt=1", NULL) &&
               level == SYMPHONY_AUTH_LOG_LEVEL_WARN,
           "the 503's retry, at WARN");
    expect(find_line(NULL, "username=\"" USER "\"", "logged in generation=1", NULL), "logged in, generation 1");
    expect(find_line(&level, "tokens refused with HTTP 401", "generation=1", NULL) &&
               level == SYMPHONY_AUTH_LOG_LEVEL_WARN,
           "the 401 on generation 1, at WARN");
    expect(find_line(NULL, "login started reason=\"relogin\"", NULL), "the re-login's start");
    expect(find_line(NULL, "logged in generation=2", NULL), "logged in, generation 2");
    expect(find_line(&level, "login failed", "class=\"rejected\"", "status=401", NULL) &&
               level == SYMPHONY_AUTH_LOG_LEVEL_ERROR,
           "the rejected login's failure and its class, at ERROR");
    expect(!find_line(NULL, "simplified key delivery decision", NULL), "nothing above INFO");

    expect(jwt[0] != 0 && strncmp(jwt, "eyJ", 3) == 0, "the login request carried a JWT");
    expect(!holds_window_of(jwt), "no slice of the JWT");
    expect(!strstr(captured.text, "eyJ"), "no JWT at all");
    expect(!holds_window_of("c-session-token-canary-1") && !holds_window_of("c-session-token-canary-2") &&
               !holds_window_of("c-key-manager-token-canary"),
           "no token");
    expect(!holds_hex_run(), "no run of 64 hex digits");
    int key_shown = 0;
    for (char *line = strtok(pem, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, "-----", 5) != 0) key_shown = key_shown || holds_window_of(line);
    expect(!key_shown, "no slice of the key");
    memset(pem, 0, sizeof pem);

    /* WARN and above only. */
    clear_lines();
    expect(symphony_auth_set_log_callback(on_line, &calls, SYMPHONY_AUTH_LOG_LEVEL_WARN) == SYMPHONY_AUTH_STATUS_OK,
           "the level is replaced");
    /* The rejected login cools down: a refresh logs in all the same. */
    expect(symphony_auth_authenticator_refresh(auth, NOW, NULL) == SYMPHONY_AUTH_STATUS_OK, "refresh");
    expect(login(auth, retried, 2, "c-session-token-canary-3") == 3, "a login with a retry: generation 3");
    expect(find_line(NULL, "retry scheduled", NULL) && !find_line(NULL, "login started", NULL) &&
               !find_line(NULL, "logged in", NULL),
           "at WARN: the retry, not the INFO lines");

    /* NULL turns it off. */
    expect(symphony_auth_set_log_callback(NULL, NULL, SYMPHONY_AUTH_LOG_LEVEL_TRACE) == SYMPHONY_AUTH_STATUS_OK,
           "NULL is OK");
    int before = calls;
    expect(unauthorized(auth, 3) && login(auth, retried, 2, "c-session-token-canary-4") == 4,
           "a login with logging off: generation 4");
    expect(calls == before, "no line after NULL");

    symphony_auth_authenticator_free(auth);
    free(captured.text);
    printf("logging: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
