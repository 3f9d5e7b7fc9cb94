/*
 * Threads sharing one login through a flight: the C program keeps the flight behind its own mutex, releases it
 * while it signs, "sends" and waits, and wakes the followers when the leader says so. The "network" answers every
 * login request with a token and counts the requests.
 *
 *   threads KEY.pem      (checks: THREADS callers → one login; THREADS 401s on that generation → one more)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "symphony_auth.h"

#define THREADS 8
#define NOW 1700000000000ULL

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t woken = PTHREAD_COND_INITIALIZER;
static SymphonyAuthFlight *flight;
static int session_logins; /* under `lock` */
static int failures;       /* under `lock` */

static void fail(const char *what) {
    pthread_mutex_lock(&lock);
    failures++;
    pthread_mutex_unlock(&lock);
    fprintf(stderr, "threads: %s\n", what);
}

/* One caller, from join to leave; returns the generation of the tokens it got, 0 on failure. */
static uint64_t tokens(uint32_t want, uint64_t generation) {
    SymphonyAuthCaller *caller = NULL;
    uint64_t got = 0;
    pthread_mutex_lock(&lock);
    if (symphony_auth_flight_join(flight, want, generation, &caller) != SYMPHONY_AUTH_STATUS_OK) {
        pthread_mutex_unlock(&lock);
        fail("join");
        return 0;
    }
    for (;;) {
        SymphonyAuthOutput *out = NULL;
        if (symphony_auth_flight_poll(flight, caller, NOW, &out) != SYMPHONY_AUTH_STATUS_OK) break;
        SymphonyAuthOutputKind kind = symphony_auth_output_kind(out);
        if (kind == SYMPHONY_AUTH_OUTPUT_KIND_DONE) {
            SymphonyAuthTokens *t = NULL;
            if (symphony_auth_output_tokens(out, &t) == SYMPHONY_AUTH_STATUS_OK) got = symphony_auth_tokens_generation(t);
            if (symphony_auth_output_wake_followers(out)) pthread_cond_broadcast(&woken);
            symphony_auth_tokens_free(t);
            symphony_auth_output_free(out);
            break;
        }
        if (kind == SYMPHONY_AUTH_OUTPUT_KIND_FOLLOW) {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += 10;
            symphony_auth_output_free(out);
            if (pthread_cond_timedwait(&woken, &lock, &deadline) == ETIMEDOUT) {
                pthread_mutex_unlock(&lock);
                fail("a follower was not woken within 10 s");
                pthread_mutex_lock(&lock);
                break;
            }
            continue;
        }
        /* This caller leads: the work is done with the mutex released. */
        pthread_mutex_unlock(&lock);
        if (kind == SYMPHONY_AUTH_OUTPUT_KIND_SIGN) {
            SymphonyAuthSignature *signature = NULL;
            SymphonyAuthStatus signed_ok = symphony_auth_output_sign(out, &signature);
            pthread_mutex_lock(&lock);
            if (signed_ok != SYMPHONY_AUTH_STATUS_OK) fail("sign");
            symphony_auth_flight_supply_signature(flight, signature, NOW);
        } else if (kind == SYMPHONY_AUTH_OUTPUT_KIND_SEND) {
            size_t count = symphony_auth_output_request_count(out);
            pthread_mutex_lock(&lock);
            for (size_t i = 0; i < count; i++) {
                SymphonyAuthRequest r;
                symphony_auth_output_request(out, i, &r);
                if (r.endpoint == SYMPHONY_AUTH_ENDPOINT_RSA_SESSION) session_logins++;
                char body[64];
                int n = snprintf(body, sizeof body, "{\"token\":\"token-%d-%zu\"}", session_logins, i);
                if (symphony_auth_flight_handle_response(flight, r.id, 200, NULL, 0, (const uint8_t *)body, (size_t)n,
                                                         NOW) != SYMPHONY_AUTH_STATUS_OK)
                    fail("handle_response");
            }
        } else {
            pthread_mutex_lock(&lock);
            fail("unexpected output kind");
            symphony_auth_output_free(out);
            break;
        }
        symphony_auth_output_free(out);
    }
    symphony_auth_flight_leave(flight, caller, NOW, NULL);
    pthread_mutex_unlock(&lock);
    return got;
}

static uint64_t round_want = SYMPHONY_AUTH_WANT_CURRENT, round_generation = 0;

static void *caller_thread(void *result) {
    *(uint64_t *)result = tokens((uint32_t)round_want, round_generation);
    return NULL;
}

/* Runs THREADS callers at once; checks they all got `generation` and that `logins` session logins were made. */
static int round_of(uint32_t want, uint64_t reported, uint64_t generation, int logins) {
    pthread_t threads[THREADS];
    uint64_t results[THREADS];
    round_want = want;
    round_generation = reported;
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, caller_thread, &results[i]);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    int ok = failures == 0 && session_logins == logins;
    for (int i = 0; i < THREADS; i++) ok = ok && results[i] == generation;
    if (!ok) fprintf(stderr, "threads: expected generation %llu after %d login(s), saw %d login(s)\n",
                     (unsigned long long)generation, logins, session_logins);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: threads KEY.pem\n"); return 2; }
    FILE *file = fopen(argv[1], "rb");
    if (!file) { fprintf(stderr, "threads: cannot open %s\n", argv[1]); return 2; }
    uint8_t pem[8192];
    size_t pem_len = fread(pem, 1, sizeof pem, file);
    fclose(file);

    SymphonyAuthConfig *config = symphony_auth_config_new();
    const char *pod = "https://acme.symphony.com", *user = "bot.user";
    SymphonyAuthAuthenticator *auth = NULL;
    if (symphony_auth_config_set_url(config, SYMPHONY_AUTH_SERVICE_POD, (const uint8_t *)pod, strlen(pod)) ||
        symphony_auth_config_set_username(config, (const uint8_t *)user, strlen(user)) ||
        symphony_auth_config_set_rsa_key_pem(config, pem, pem_len) ||
        symphony_auth_authenticator_new(config, 42, &auth)) {
        SymphonyAuthBytes m = symphony_auth_config_last_error(config);
        fprintf(stderr, "threads: %.*s\n", (int)m.len, (const char *)m.ptr);
        return 1;
    }
    memset(pem, 0, sizeof pem);
    symphony_auth_config_free(config);
    flight = symphony_auth_flight_new(auth);

    int passed = 0, failed = 0;
    if (round_of(SYMPHONY_AUTH_WANT_CURRENT, 0, 1, 1)) passed++; else failed++;
    if (round_of(SYMPHONY_AUTH_WANT_NEWER, 1, 2, 2)) passed++; else failed++;
    symphony_auth_flight_free(flight);
    printf("threads: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
