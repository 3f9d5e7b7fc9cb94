/*
 * Logs a bot in with the C API and a small HTTP/1.1 client over POSIX sockets (plain http, Connection: close),
 * then calls GET /pod/v2/sessioninfo with the tokens attached.
 *
 *   login POD_URL USERNAME PRIVATE_KEY.pem
 *
 * Against the fake pod:  cargo run -p symphony-auth-testkit --bin fake-pod -- --rsa-bot NAME=PUBLIC_KEY.pem
 * prints {"pod":"http://127.0.0.1:PORT",...}; pass that URL. A real pod needs https: put a TLS client in place of
 * `exchange`, and send requests whose `uses_client_certificate` is true through its mutual-TLS configuration.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "symphony_auth.h"

#define MAX_HEADERS 32
#define MAX_PENDING 4

/* An answer as read off the wire; `headers` and `body` point into `raw`, which is wiped before it is freed. */
typedef struct {
    uint64_t id;
    uint32_t failure; /* a SymphonyAuthTransportKind, or NONE when there is an answer */
    const char *detail;
    uint16_t status;
    SymphonyAuthHeader headers[MAX_HEADERS];
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
    char *raw;
    size_t raw_len;
} Answer;

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void answer_free(Answer *a) {
    if (a->raw) {
        volatile char *p = a->raw; /* the body may hold a token */
        for (size_t i = 0; i < a->raw_len; i++) p[i] = 0;
        free(a->raw);
    }
    memset(a, 0, sizeof *a);
}

static int failed(Answer *a, uint32_t kind, const char *detail) {
    a->failure = kind;
    a->detail = detail;
    return -1;
}

/* Sends one request over plain HTTP/1.1 and reads the whole answer (the server closes the connection). */
static int exchange(const char *method, size_t method_len, const char *url, size_t url_len,
                    const SymphonyAuthHeader *headers, size_t header_count, const uint8_t *body, size_t body_len,
                    Answer *a) {
    char host[256], port[8] = "80";
    const char *path;
    if (url_len < 8 || strncmp(url, "http://", 7) != 0) return failed(a, SYMPHONY_AUTH_TRANSPORT_KIND_REFUSED, "this example speaks plain http only");
    const char *start = url + 7, *end = url + url_len;
    path = memchr(start, '/', (size_t)(end - start));
    if (!path) path = end;
    size_t authority = (size_t)(path - start);
    if (authority == 0 || authority >= sizeof host) return failed(a, SYMPHONY_AUTH_TRANSPORT_KIND_OTHER, "bad host");
    memcpy(host, start, authority);
    host[authority] = '\0';
    char *colon = strrchr(host, ':');
    if (colon) { snprintf(port, sizeof port, "%s", colon + 1); *colon = '\0'; }

    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &found) != 0) return failed(a, SYMPHONY_AUTH_TRANSPORT_KIND_CONNECT, "unknown host");
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    struct timeval timeout = {10, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    }
    int connected = fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0;
    freeaddrinfo(found);
    if (!connected) {
        if (fd >= 0) close(fd);
        return failed(a, SYMPHONY_AUTH_TRANSPORT_KIND_CONNECT, "connection refused");
    }

    FILE *out = fdopen(dup(fd), "w");
    fprintf(out, "%.*s %.*s HTTP/1.1\r\nHost: %.*s\r\nConnection: close\r\nContent-Length: %zu\r\n", (int)method_len,
            method, (int)(end - path), path, (int)authority, start, body_len);
    for (size_t i = 0; i < header_count; i++)
        fprintf(out, "%.*s: %.*s\r\n", (int)headers[i].name.len, (const char *)headers[i].name.ptr,
                (int)headers[i].value.len, (const char *)headers[i].value.ptr);
    fputs("\r\n", out);
    if (body_len) fwrite(body, 1, body_len, out);
    int sent = fclose(out) == 0;

    size_t cap = 4096;
    a->raw = malloc(cap + 1);
    for (ssize_t got = 1; sent && got > 0;) {
        if (a->raw_len == cap) { /* grow by moving, wiping the old buffer */
            char *bigger = malloc(cap * 2 + 1);
            memcpy(bigger, a->raw, a->raw_len);
            memset(a->raw, 0, a->raw_len);
            free(a->raw);
            a->raw = bigger;
            cap *= 2;
        }
        got = read(fd, a->raw + a->raw_len, cap - a->raw_len);
        if (got < 0) { close(fd); return failed(a, errno == EAGAIN ? SYMPHONY_AUTH_TRANSPORT_KIND_TIMEOUT : SYMPHONY_AUTH_TRANSPORT_KIND_RESET, "read failed"); }
        a->raw_len += (size_t)got;
    }
    close(fd);
    if (!sent) return failed(a, SYMPHONY_AUTH_TRANSPORT_KIND_RESET, "write failed");
    a->raw[a->raw_len] = '\0';

    /* "HTTP/1.1 200 OK\r\n", then "Name: value\r\n" lines, an empty line, and the body. */
    char *line = a->raw, *head_end = strstr(a->raw, "\r\n\r\n");
    if (strncmp(line, "HTTP/1.", 7) != 0 || !head_end) return failed(a, SYMPHONY_AUTH_TRANSPORT_KIND_RESET, "no complete answer");
    a->status = (uint16_t)atoi(line + 9);
    a->body = (const uint8_t *)head_end + 4;
    a->body_len = a->raw_len - (size_t)(head_end + 4 - a->raw);
    *head_end = '\0';
    for (line = strstr(line, "\r\n"); line && a->header_count < MAX_HEADERS; line = strstr(line, "\r\n")) {
        *line = '\0';
        line += 2;
        char *sep = strchr(line, ':');
        if (!sep) break;
        char *value = sep + 1;
        while (*value == ' ') value++;
        char *value_end = strstr(value, "\r\n");
        size_t value_len = value_end ? (size_t)(value_end - value) : strlen(value);
        a->headers[a->header_count].name = (SymphonyAuthBytes){(const uint8_t *)line, (size_t)(sep - line)};
        a->headers[a->header_count].value = (SymphonyAuthBytes){(const uint8_t *)value, value_len};
        if ((size_t)(sep - line) == 14 && strncasecmp(line, "content-length", 14) == 0) {
            size_t declared = (size_t)strtoull(value, NULL, 10);
            if (declared > a->body_len) return failed(a, SYMPHONY_AUTH_TRANSPORT_KIND_RESET, "body cut short");
            a->body_len = declared;
        }
        a->header_count++;
    }
    return 0;
}

static void report(const char *what, SymphonyAuthBytes message) {
    fprintf(stderr, "login: %s: %.*s\n", what, (int)message.len, (const char *)message.ptr);
}

/* Drives the authenticator's one output until DONE; returns the tokens, or NULL after printing why. */
static SymphonyAuthTokens *log_in(SymphonyAuthAuthenticator *auth) {
    Answer pending[MAX_PENDING];
    size_t pending_count = 0;
    for (;;) {
        SymphonyAuthOutput *out = NULL;
        if (symphony_auth_authenticator_poll_output(auth, now_ms(), &out)) {
            report("poll", symphony_auth_authenticator_last_error(auth));
            return NULL;
        }
        switch (symphony_auth_output_kind(out)) {
            case SYMPHONY_AUTH_OUTPUT_KIND_SIGN: {
                SymphonyAuthSignature *signature = NULL;
                symphony_auth_output_sign(out, &signature);
                symphony_auth_authenticator_supply_signature(auth, signature, now_ms());
                break;
            }
            case SYMPHONY_AUTH_OUTPUT_KIND_SEND: /* one after the other here; a real client sends them at once */
                for (size_t i = 0; i < symphony_auth_output_request_count(out) && pending_count < MAX_PENDING; i++) {
                    SymphonyAuthRequest r;
                    symphony_auth_output_request(out, i, &r);
                    Answer *a = &pending[pending_count++];
                    memset(a, 0, sizeof *a);
                    a->id = r.id;
                    exchange((const char *)r.method.ptr, r.method.len, (const char *)r.url.ptr, r.url.len, r.headers,
                             r.header_count, r.body.ptr, r.body.len, a);
                }
                break;
            case SYMPHONY_AUTH_OUTPUT_KIND_AWAIT_ANSWERS: {
                Answer *a = &pending[0];
                if (pending_count == 0) { fprintf(stderr, "login: an answer is awaited that was never sent\n"); return NULL; }
                if (a->failure)
                    symphony_auth_authenticator_handle_failure(auth, a->id, a->failure, (const uint8_t *)a->detail,
                                                               strlen(a->detail), now_ms());
                else
                    symphony_auth_authenticator_handle_response(auth, a->id, a->status, a->headers, a->header_count,
                                                                a->body, a->body_len, now_ms());
                answer_free(a);
                memmove(pending, pending + 1, --pending_count * sizeof *pending);
                break;
            }
            case SYMPHONY_AUTH_OUTPUT_KIND_WAIT_UNTIL: {
                uint64_t at = symphony_auth_output_wait_until(out), now = now_ms();
                if (at > now) {
                    struct timespec pause = {(time_t)((at - now) / 1000), (long)((at - now) % 1000) * 1000000};
                    nanosleep(&pause, NULL);
                }
                break;
            }
            case SYMPHONY_AUTH_OUTPUT_KIND_DONE: {
                SymphonyAuthTokens *tokens = NULL;
                if (symphony_auth_output_tokens(out, &tokens))
                    report("login failed", symphony_auth_output_error(out).message);
                while (pending_count) answer_free(&pending[--pending_count]); /* answers no longer needed */
                symphony_auth_output_free(out);
                return tokens;
            }
            default: break;
        }
        symphony_auth_output_free(out);
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: login POD_URL KEY_MANAGER_URL AGENT_URL USERNAME PRIVATE_KEY.pem\n");
        return 2;
    }
    const char *pod = argv[1], *key_manager = argv[2], *agent = argv[3], *username = argv[4];
    uint8_t pem[8192];
    FILE *key = fopen(argv[5], "rb");
    if (!key) { fprintf(stderr, "login: cannot open %s\n", argv[5]); return 2; }
    size_t pem_len = fread(pem, 1, sizeof pem, key);
    fclose(key);

    SymphonyAuthConfig *config = symphony_auth_config_new();
    SymphonyAuthAuthenticator *auth = NULL;
    if (symphony_auth_config_set_url(config, SYMPHONY_AUTH_SERVICE_POD, (const uint8_t *)pod, strlen(pod)) ||
        symphony_auth_config_set_url(config, SYMPHONY_AUTH_SERVICE_KEY_MANAGER, (const uint8_t *)key_manager,
                                     strlen(key_manager)) ||
        symphony_auth_config_set_url(config, SYMPHONY_AUTH_SERVICE_AGENT, (const uint8_t *)agent, strlen(agent)) ||
        symphony_auth_config_set_username(config, (const uint8_t *)username, strlen(username)) ||
        symphony_auth_config_set_rsa_key_pem(config, pem, pem_len) ||
        symphony_auth_authenticator_new(config, now_ms() ^ (uint64_t)getpid(), &auth)) {
        report("configuration", symphony_auth_config_last_error(config));
        symphony_auth_config_free(config);
        return 1;
    }
    memset(pem, 0, sizeof pem); /* the key now lives in the authenticator */
    symphony_auth_config_free(config);

    int status = 1;
    SymphonyAuthTokens *tokens = log_in(auth);
    if (tokens) {
        printf("logged in as %s: generation %llu\n", username, (unsigned long long)symphony_auth_tokens_generation(tokens));
        /* An API call of the caller's own, with the tokens attached. */
        char url[512];
        snprintf(url, sizeof url, "%s/pod/v2/sessioninfo", pod);
        SymphonyAuthHeaderList *list = NULL;
        if (symphony_auth_tokens_authorize(tokens, (const uint8_t *)url, strlen(url), &list)) {
            report("authorize", symphony_auth_tokens_last_error(tokens));
        } else {
            SymphonyAuthHeader headers[4];
            size_t count = symphony_auth_header_list_count(list);
            for (size_t i = 0; i < count && i < 4; i++) headers[i] = symphony_auth_header_list_get(list, i);
            Answer a = {0};
            if (exchange("GET", 3, url, strlen(url), headers, count < 4 ? count : 4, NULL, 0, &a) == 0) {
                printf("GET /pod/v2/sessioninfo: HTTP %u\n", (unsigned)a.status);
                if (a.status == 401) /* the tokens were refused: the next log_in logs in again */
                    symphony_auth_authenticator_report_unauthorized(auth, symphony_auth_tokens_generation(tokens), NULL, NULL);
                status = a.status == 200 ? 0 : 1;
            }
            answer_free(&a);
            symphony_auth_header_list_free(list);
        }
        symphony_auth_tokens_free(tokens);
    }
    symphony_auth_authenticator_free(auth);
    return status;
}
