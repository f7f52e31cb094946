/*
 * The S3 datastore backend: the datastore vtable over the S3 REST API.
 *
 * Every vtable call builds a small set of requests (one for a HEAD, many
 * for a multipart PUT or a large ranged GET) and runs them to completion
 * on a curl multi handle borrowed from the datastore's pool; retries with
 * backoff and jitter happen inside that loop, request by request. See s3.h
 * for settings and threading, docs/s3.md for the user-facing rules.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "config.h"
#include "creds.h"
#include "s3.h"
#include "sigv4.h"
#include "xml.h"

/* ------------------------------------------------------------ settings */

#define DEF_PARALLEL 16u
#define DEF_RETRIES 7u
#define DEF_RETRY_TIME_S 120u
#define DEF_THRESHOLD (16ull << 20)
#define DEF_PART (8ull << 20)
#define MIN_PART (5ull << 20)     /* S3's smallest part but the last */
#define MAX_PART (5ull << 30)     /* and its largest */
#define MAX_PARTS 10000u
#define DEF_CONNECT_S 10u
#define DEF_STALL_S 30u
#define BACKOFF_BASE_US 100000    /* first retry within 0.1 s ... */
#define BACKOFF_CAP_US 10000000   /* ... later ones within 10 s */
#define ERR_BODY_MAX (64u * 1024u)
#define DEF_REFRESH_AGE_S 600     /* put-if-absent refreshes older objects */
#define DEF_CRED_MARGIN_S 300     /* refresh temporary credentials this early */
#define CRED_RETRY_S 10           /* a failed refresh is tried again after this */
#define FORCED_REFRESH_GAP_US (60 * 1000000LL) /* guessed expiries: one fetch a minute */
#define GUESS_NEW_STREAK 8        /* after this many new content blobs in a row ... */
#define GUESS_NEW_MIN (64u << 10) /* ... blobs this large skip the HEAD */

typedef struct bucket_rate {
    pthread_mutex_t lock;
    uint64_t rate;     /* bytes per second; 0 = unlimited */
    double tokens;     /* may go negative: a debt paid by sleeping */
    int64_t last_us;
} bucket_rate;

typedef struct mpool_ent {
    struct mpool_ent *next;
    CURLM *multi;
} mpool_ent;

typedef struct s3ds {
    mf_datastore vt; /* first: the core passes &vt around */
    char *root;      /* "s3://bucket/prefix" as given, for messages */
    char *bucket;
    char *prefix;    /* "" or ends with '/' */
    char *base;      /* "scheme://authority" of requests */
    char *host;      /* the Host header (signed) */
    bool path_style;

    pthread_mutex_t cred_lock; /* guards cfg (credentials are refreshed) */
    mf__s3cfg cfg;

    CURLSH *share;   /* DNS cache and TLS sessions, shared by all handles */
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];

    pthread_mutex_t pool_lock;
    mpool_ent *pool;

    pthread_mutex_t slot_lock;
    pthread_cond_t slot_cond;
    unsigned in_flight, max_parallel;

    bucket_rate up, down;

    unsigned retries;
    int64_t retry_time_us;
    uint64_t threshold, part_size;
    long connect_s, stall_s;
    int64_t refresh_age;
    int64_t cred_margin;
    int64_t cred_retry_at;    /* after a failed refresh, not before this */
    uint64_t cred_gen;        /* counts successful fetches */
    /* S3 rejected the current keys (or is guessed to have): fetch at the
     * next signing, and nobody signs with them meanwhile. Cleared when a
     * fetch ends, well or not. */
    bool cred_force;
    bool cred_fetching;       /* a thread is fetching (without cred_lock) */
    pthread_cond_t cred_cond; /* signalled when that fetch ends */
    char cred_error[512];     /* why the last fetch failed; "" after one worked */
    int cred_error_code;      /* and its code */
    int64_t cred_forced_at;   /* mono us of the last forced fetch; 0: none */
    long bufsize;             /* curl's buffers: smaller under a bandwidth limit */

    _Atomic uint64_t n_requests, n_retries, n_up, n_down, max_seen;
    /* Content blobs that put-if-absent found missing, in a row. */
    _Atomic unsigned absent_streak;
} s3ds;

static s3ds *S(mf_datastore *ds) { return (s3ds *)ds; }

/* An unsigned setting with an optional K/M/G (binary) suffix. */
static int env_u64(const char *name, uint64_t def, uint64_t min, uint64_t max, bool suffix,
                   uint64_t *out)
{
    const char *v = mf__getenv(name);
    *out = def;
    if (!v)
        return MF_OK;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    uint64_t mul = 1;
    if (suffix && *end) {
        switch (*end) {
        case 'k': case 'K': mul = 1ull << 10; break;
        case 'm': case 'M': mul = 1ull << 20; break;
        case 'g': case 'G': mul = 1ull << 30; break;
        default: mul = 0;
        }
        if (mul)
            end++;
        if (*end == 'i' && end[-1] != v[0])
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
    }
    if (errno || end == v || *end || v[0] == '-' || !mul || n > max / mul || n * mul < min)
        return mf__error_set(MF_EINVAL,
                             "%s='%.64s': expected a whole number from %" PRIu64 " to %" PRIu64
                             "%s", name, v, min, max, suffix ? " (K, M or G suffix allowed)" : "");
    *out = n * mul;
    return MF_OK;
}

/* --------------------------------------------------- slots and bandwidth */

static void slot_release(s3ds *s)
{
    pthread_mutex_lock(&s->slot_lock);
    s->in_flight--;
    pthread_cond_signal(&s->slot_cond);
    pthread_mutex_unlock(&s->slot_lock);
}

/* Take a transfer slot; wait for one only when `block` (the caller has
 * nothing in flight, so it cannot make progress otherwise). */
static bool slot_take(s3ds *s, bool block)
{
    pthread_mutex_lock(&s->slot_lock);
    while (s->in_flight >= s->max_parallel) {
        if (!block) {
            pthread_mutex_unlock(&s->slot_lock);
            return false;
        }
        pthread_cond_wait(&s->slot_cond, &s->slot_lock);
    }
    unsigned n = ++s->in_flight;
    pthread_mutex_unlock(&s->slot_lock);
    uint64_t seen = atomic_load(&s->max_seen);
    while (n > seen && !atomic_compare_exchange_weak(&s->max_seen, &seen, n))
        ;
    return true;
}

/* Spend `n` bytes of a direction's budget; the debt is paid by sleeping,
 * so transfers of every thread together keep to the rate. */
static void rate_spend(bucket_rate *b, size_t n)
{
    if (!b->rate || !n)
        return;
    pthread_mutex_lock(&b->lock);
    int64_t now = mf__mono_us();
    double burst = (double)b->rate / 8.0;
    b->tokens += (double)(now - b->last_us) * (double)b->rate / 1e6;
    if (b->tokens > burst)
        b->tokens = burst;
    b->last_us = now;
    b->tokens -= (double)n;
    double debt = b->tokens < 0 ? -b->tokens : 0;
    pthread_mutex_unlock(&b->lock);
    if (debt > 0) {
        double s = debt / (double)b->rate;
        struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}

/* ------------------------------------------------------------ requests */

typedef enum sink { SINK_MEM, SINK_AT } sink;

/* The most query parameters and extra headers a request has (a listing
 * page: list-type, prefix, encoding-type, delimiter, continuation-token). */
#define REQ_QUERY_MAX 6
#define REQ_HEADER_MAX 4

typedef struct req {
    s3ds *s;
    const char *op;        /* for messages: "GET", "UploadPart", ... */
    const char *method;
    const char *key;       /* the datastore key, for messages; NULL for the bucket */
    mf_buf path;           /* decoded request path: "/bucket/prefix/key" or "/prefix/key" */
    uint64_t cred_gen;     /* s->cred_gen when it was signed */
    mf__sigv4_pair query[REQ_QUERY_MAX];
    size_t nquery;
    mf__sigv4_pair hdr[REQ_HEADER_MAX]; /* extra signed headers */
    size_t nhdr;
    char range[64];

    /* the body: bytes [body_off, body_off + body_len) of the iovecs */
    const mf_ds_iovec *iov;
    size_t niov;
    uint64_t body_off, body_len;
    bool has_body;
    char payload_hash[65];
    size_t cur_iov;        /* read cursor */
    uint64_t cur_pos, sent;

    /* the response body: appended to `mem` (capped at mem_cap), or written
     * at `dst` (at most dst_cap bytes); error bodies go to `errbody`. */
    sink sink;
    mf_buf *mem;
    uint64_t mem_cap;
    uint8_t *dst;
    uint64_t dst_cap;
    uint64_t got;
    mf_buf errbody;
    bool overflow;

    /* what came back */
    long status;
    CURLcode cc;
    char curl_err[CURL_ERROR_SIZE];
    char request_id[MF__S3XML_ID_MAX];
    char etag[MF__S3XML_ETAG_MAX];
    char bucket_region[64];
    uint64_t total;        /* from Content-Range, else Content-Length */
    uint64_t clen;
    int64_t last_modified;

    /* retry state */
    unsigned attempt;
    int64_t first_us, not_before_us;
    bool active, done;
    int rc;

    CURL *easy;
    struct curl_slist *headers;
    mf_buf url;
    mf_buf msg;            /* the final error's message */
} req;

static void req_init(req *r, s3ds *s, const char *op, const char *method, const char *key)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->op = op;
    r->method = method;
    r->key = key;
    r->sink = SINK_MEM;
}

static void req_dispose(req *r)
{
    mf_buf_dispose(&r->path);
    mf_buf_dispose(&r->errbody);
    mf_buf_dispose(&r->url);
    mf_buf_dispose(&r->msg);
    if (r->headers)
        mf__s3_slist_wipe_free(r->headers);
    r->headers = NULL;
}

/* The request path for `key` ("" or NULL for the bucket itself). */
static int req_path(req *r, const char *key)
{
    s3ds *s = r->s;
    mf__buf_clear(&r->path);
    int rc = mf__buf_puts(&r->path, "/");
    if (!rc && s->path_style)
        rc = mf__buf_puts(&r->path, s->bucket);
    if (!rc && key) {
        if (s->path_style)
            rc = mf__buf_puts(&r->path, "/");
        if (!rc)
            rc = mf__buf_puts(&r->path, s->prefix);
        if (!rc)
            rc = mf__buf_puts(&r->path, key);
    }
    return rc;
}

static void req_query(req *r, const char *name, const char *value)
{
    if (r->nquery == REQ_QUERY_MAX)
        abort(); /* a programming error: REQ_QUERY_MAX is too small */
    r->query[r->nquery].name = name;
    r->query[r->nquery].value = value;
    r->nquery++;
}

static void req_header(req *r, const char *name, const char *value)
{
    if (r->nhdr == REQ_HEADER_MAX)
        abort(); /* a programming error: REQ_HEADER_MAX is too small */
    r->hdr[r->nhdr].name = name;
    r->hdr[r->nhdr].value = value;
    r->nhdr++;
}

static void req_body(req *r, const mf_ds_iovec *iov, size_t niov, uint64_t off, uint64_t len)
{
    r->iov = iov;
    r->niov = niov;
    r->body_off = off;
    r->body_len = len;
    r->has_body = true;
}

/* Position the body cursor at body offset `pos`. */
static void body_seek(req *r, uint64_t pos)
{
    uint64_t abs = r->body_off + pos, at = 0;
    size_t i = 0;
    while (i < r->niov && at + r->iov[i].len <= abs) {
        at += r->iov[i].len;
        i++;
    }
    r->cur_iov = i;
    r->cur_pos = abs - at;
    r->sent = pos;
}

static int hash_body(req *r)
{
    uint8_t h[MF_SHA256_LEN];
    mf__sha256_ctx *ctx = mf__sha256_begin();
    if (!ctx)
        return mf__error_oom();
    body_seek(r, 0);
    uint64_t left = r->body_len;
    size_t i = r->cur_iov;
    uint64_t pos = r->cur_pos;
    int rc = MF_OK;
    while (left && i < r->niov && rc == MF_OK) {
        uint64_t n = r->iov[i].len - pos;
        if (n > left)
            n = left;
        rc = mf__sha256_update(ctx, (const uint8_t *)r->iov[i].base + pos, (size_t)n);
        left -= n;
        i++;
        pos = 0;
    }
    if (rc != MF_OK) {
        mf__sha256_abort(ctx);
        return rc;
    }
    if ((rc = mf__sha256_end(ctx, h)) != MF_OK)
        return rc;
    mf__hex(h, MF_SHA256_LEN, r->payload_hash);
    return MF_OK;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    req *r = ud;
    size_t cap = size * nitems, n = 0;
    while (n < cap && r->sent < r->body_len && r->cur_iov < r->niov) {
        const mf_ds_iovec *v = &r->iov[r->cur_iov];
        uint64_t avail = v->len - r->cur_pos;
        uint64_t left = r->body_len - r->sent;
        size_t take = cap - n;
        if (take > avail)
            take = (size_t)avail;
        if (take > left)
            take = (size_t)left;
        memcpy(buf + n, (const uint8_t *)v->base + r->cur_pos, take);
        n += take;
        r->sent += take;
        r->cur_pos += take;
        if (r->cur_pos == v->len) {
            r->cur_iov++;
            r->cur_pos = 0;
        }
    }
    rate_spend(&r->s->up, n);
    atomic_fetch_add(&r->s->n_up, n);
    return n;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
    req *r = ud;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    body_seek(r, (uint64_t)off);
    return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    req *r = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    rate_spend(&r->s->down, n);
    atomic_fetch_add(&r->s->n_down, n);
    if (status < 200 || status > 299) {
        size_t room = ERR_BODY_MAX > r->errbody.size ? ERR_BODY_MAX - r->errbody.size : 0;
        if (room && mf__buf_put(&r->errbody, data, n < room ? n : room) != MF_OK)
            return 0;
        return n;
    }
    if (r->sink == SINK_AT) {
        if (r->got + n > r->dst_cap) {
            r->overflow = true;
            return 0;
        }
        memcpy(r->dst + r->got, data, n);
    } else {
        if (r->got + n > r->mem_cap) {
            r->overflow = true;
            return 0;
        }
        if (mf__buf_put(r->mem, data, n) != MF_OK)
            return 0;
    }
    r->got += n;
    return n;
}

/* A response header's value copied into `out` ("" when absent). */
static void header_copy(CURL *easy, const char *name, char *out, size_t cap)
{
    struct curl_header *h;
    out[0] = '\0';
    if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h->value) {
        size_t n = strlen(h->value);
        if (n >= cap)
            n = cap - 1;
        memcpy(out, h->value, n);
        out[n] = '\0';
    }
}

/* The MD5 of the concatenation of `iov` (S3's ETags and Content-MD5). */
static int md5_iov(const mf_ds_iovec *iov, size_t niov, unsigned char md[16])
{
    unsigned int n = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_md5(), NULL) == 1;
    for (size_t i = 0; ok && i < niov; i++)
        ok = EVP_DigestUpdate(c, iov[i].base, (size_t)iov[i].len) == 1;
    ok = ok && EVP_DigestFinal_ex(c, md, &n) == 1 && n == 16;
    EVP_MD_CTX_free(c);
    return ok ? MF_OK : mf__error_set(MF_ERROR, "OpenSSL: MD5 failed");
}


/* Sign the request with the current credentials (refreshed when they are
 * about to expire) and turn the result into header lines. */
static int req_sign(req *r)
{
    s3ds *s = r->s;
    mf__sigv4_result res = MF__SIGV4_RESULT_INIT;
    mf__sigv4_pair out[MF__SIGV4_HEADERS_MAX];
    mf_buf line = MF_BUF_INIT;
    int rc;
    pthread_mutex_lock(&s->cred_lock);
    for (;;) {
        int64_t now = (int64_t)time(NULL);
        bool usable = !s->cfg.pending && s->cfg.access_key_id && !s->cred_force &&
                      !mf__s3creds_expiring(&s->cfg, now, 0);
        bool due = s->cfg.pending ||
                   (mf__s3creds_refreshable(&s->cfg) &&
                    (s->cred_force || (now >= s->cred_retry_at &&
                                       mf__s3creds_expiring(&s->cfg, now, s->cred_margin))));
        if (!due && !usable && s->cred_error[0] && now < s->cred_retry_at) {
            /* The last fetch failed and these no longer work: say why. */
            rc = mf__error_set(s->cred_error_code, "S3 %s of '%s' in %s: refreshing credentials: %s",
                               r->op, r->key ? r->key : "", s->root, s->cred_error);
            pthread_mutex_unlock(&s->cred_lock);
            return rc;
        }
        if (!due)
            break;
        if (s->cred_fetching) {
            /* Another thread renews them: sign with these while they
             * work, else wait for it. */
            if (usable)
                break;
            pthread_cond_wait(&s->cred_cond, &s->cred_lock);
            continue;
        }
        /* The network part runs without the lock, so that other threads'
         * requests are not held up by STS, SSO or IMDS. */
        s->cred_fetching = true;
        pthread_mutex_unlock(&s->cred_lock);
        mf__s3creds fresh;
        rc = mf__s3creds_fetch_new(&s->cfg, &fresh);
        pthread_mutex_lock(&s->cred_lock);
        if (rc == MF_OK)
            rc = mf__s3creds_install(&s->cfg, &fresh);
        s->cred_fetching = false;
        s->cred_force = false;
        pthread_cond_broadcast(&s->cred_cond);
        if (rc == MF_OK) {
            s->cred_gen++;
            s->cred_error[0] = '\0';
            break;
        }
        /* Keep signing with what still works; try again in a while. The
         * fetch may have taken long: the time and the keys are looked at
         * again. */
        now = (int64_t)time(NULL);
        s->cred_retry_at = now + CRED_RETRY_S;
        snprintf(s->cred_error, sizeof s->cred_error, "%s", mf_error_last());
        s->cred_error_code = rc;
        if (s->cfg.pending || !s->cfg.access_key_id || mf__s3creds_expiring(&s->cfg, now, 0)) {
            pthread_mutex_unlock(&s->cred_lock);
            return mf__error_wrap("S3 %s of '%s' in %s: refreshing credentials", r->op,
                                  r->key ? r->key : "", s->root);
        }
        mf_error_clear();
        break;
    }
    r->cred_gen = s->cred_gen;
    mf__sigv4_credentials creds = { s->cfg.access_key_id, s->cfg.secret_access_key,
                                    s->cfg.session_token };
    mf__sigv4_request sr = {
        .method = r->method, .host = s->host, .path = r->path.ptr,
        .query = r->query, .query_count = r->nquery,
        .headers = r->hdr, .header_count = r->nhdr,
        .payload_hash = r->has_body ? r->payload_hash : NULL,
        .region = s->cfg.region, .service = "s3", .time = (int64_t)time(NULL), .flags = 0,
    };
    rc = mf__sigv4_sign(&res, &sr, &creds);
    size_t nh = rc == MF_OK ? mf__sigv4_result_headers(&res, out) : 0;
    for (size_t i = 0; rc == MF_OK && i < nh; i++) {
        struct curl_slist *l;
        mf__buf_clear(&line);
        rc = mf__buf_printf(&line, "%s: %s", out[i].name, out[i].value);
        if (rc == MF_OK && !(l = curl_slist_append(r->headers, line.ptr)))
            rc = mf__error_oom();
        else if (rc == MF_OK)
            r->headers = l;
    }
    pthread_mutex_unlock(&s->cred_lock);
    if (line.ptr)
        OPENSSL_cleanse(line.ptr, line.size);
    mf_buf_dispose(&line);
    mf__sigv4_result_dispose(&res);
    return rc;
}

static int add_header(req *r, const char *name, const char *value)
{
    mf_buf line = MF_BUF_INIT;
    int rc = value ? mf__buf_printf(&line, "%s: %s", name, value)
                   : mf__buf_printf(&line, "%s:", name);
    struct curl_slist *l = rc == MF_OK ? curl_slist_append(r->headers, line.ptr) : NULL;
    mf_buf_dispose(&line);
    if (!l)
        return rc ? rc : mf__error_oom();
    r->headers = l;
    return MF_OK;
}

/* Build, sign and configure one attempt of `r` on a new easy handle. */
static int req_start(req *r)
{
    s3ds *s = r->s;
    mf_buf q = MF_BUF_INIT;
    int rc;
    if (r->headers)
        mf__s3_slist_wipe_free(r->headers);
    r->headers = NULL;
    r->got = 0;
    r->overflow = false;
    r->status = 0;
    r->cc = CURLE_OK;
    r->curl_err[0] = '\0';
    mf__buf_clear(&r->errbody);
    if (r->sink == SINK_MEM && r->mem)
        mf__buf_clear(r->mem);
    if (!r->has_body && (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0))
        req_body(r, NULL, 0, 0, 0); /* some stores want Content-Length: 0 */
    if (r->has_body && !r->payload_hash[0] && (rc = hash_body(r)) != MF_OK)
        return rc;
    if (r->has_body)
        body_seek(r, 0);
    if ((rc = mf__sigv4_canonical_query(&q, r->query, r->nquery)) != MF_OK)
        goto out;
    mf__buf_clear(&r->url);
    rc = mf__buf_puts(&r->url, s->base);
    if (!rc)
        rc = mf__sigv4_uri_append(&r->url, r->path.ptr, r->path.size, true);
    if (!rc && q.size)
        rc = mf__buf_printf(&r->url, "?%s", q.ptr);
    for (size_t i = 0; !rc && i < r->nhdr; i++)
        rc = add_header(r, r->hdr[i].name, r->hdr[i].value);
    if (!rc && r->range[0])
        rc = add_header(r, "Range", r->range);
    /* No 100-continue round trip, and no headers curl would add unasked. */
    if (!rc)
        rc = add_header(r, "Expect", NULL);
    if (!rc && r->has_body)
        rc = add_header(r, "Content-Type", NULL);
    if (!rc)
        rc = req_sign(r);
    if (rc)
        goto out;

    CURL *e = curl_easy_init();
    if (!e) {
        rc = mf__error_oom();
        goto out;
    }
    r->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, r->url.ptr);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_SHARE, s->share);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, s->connect_s);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, s->stall_s);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, s->bufsize);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, s->bufsize);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "libmetaflow/" MF_VERSION_STRING);
    if (s->cfg.ca_bundle) /* AWS_CA_BUNDLE or the profile's; fixed after open */
        curl_easy_setopt(e, CURLOPT_CAINFO, s->cfg.ca_bundle);
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (r->has_body) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
        if (strcmp(r->method, "PUT") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }
    if (!r->first_us)
        r->first_us = mf__mono_us();
    r->attempt++;
    atomic_fetch_add(&s->n_requests, 1);
    if (r->attempt > 1)
        atomic_fetch_add(&s->n_retries, 1);
out:
    mf_buf_dispose(&q);
    return rc;
}

static bool curl_transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
        return true;
    default:
        return false;
    }
}

static bool status_transient(long status, const char *code)
{
    if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429)
        return true;
    if (status == 409 && strcmp(code, "ConditionalRequestConflict") == 0)
        return true; /* a conditional write raced another write or a delete */
    return status == 400 && (strcmp(code, "RequestTimeout") == 0 ||
                             strcmp(code, "RequestTimeTooSkewed") == 0);
}

static const char *status_code_name(long status)
{
    switch (status) {
    case 301: return "PermanentRedirect";
    case 400: return "BadRequest";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 412: return "PreconditionFailed";
    case 416: return "InvalidRange";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 501: return "NotImplemented";
    case 503: return "ServiceUnavailable";
    default: return "";
    }
}

/* Turn a finished attempt into the request's final error (r->rc), or
 * decide to retry it. Returns true when `r` must run again. */
static bool req_finish(req *r, CURLcode cc)
{
    s3ds *s = r->s;
    mf__s3xml_error xe;
    memset(&xe, 0, sizeof xe);
    r->cc = cc;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    header_copy(r->easy, "x-amz-request-id", r->request_id, sizeof r->request_id);
    header_copy(r->easy, "ETag", r->etag, sizeof r->etag);
    header_copy(r->easy, "x-amz-bucket-region", r->bucket_region, sizeof r->bucket_region);
    char buf[128];
    curl_off_t cl = -1;
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    r->clen = cl > 0 ? (uint64_t)cl : 0;
    r->total = r->clen;
    header_copy(r->easy, "Content-Range", buf, sizeof buf);
    const char *slash = strchr(buf, '/');
    if (slash && slash[1] != '*')
        r->total = strtoull(slash + 1, NULL, 10);
    header_copy(r->easy, "Last-Modified", buf, sizeof buf);
    r->last_modified = buf[0] ? (int64_t)curl_getdate(buf, NULL) : 0;

    const char *why = NULL;
    char detail[CURL_ERROR_SIZE + 64];
    bool transient = false;
    int code = MF_EIO;
    if (cc == CURLE_OK && r->status >= 200 && r->status <= 299) {
        if (r->overflow) {
            snprintf(detail, sizeof detail, "the response is longer than expected");
            why = detail;
            code = MF_ECORRUPT;
        } else if (strcmp(r->method, "GET") == 0 && r->clen && r->got != r->clen) {
            snprintf(detail, sizeof detail, "the response ended after %" PRIu64 " of %" PRIu64
                     " bytes", r->got, r->clen);
            why = detail;
            transient = true;
        } else {
            r->rc = MF_OK;
            r->done = true;
            return false;
        }
    } else if (cc != CURLE_OK) {
        snprintf(detail, sizeof detail, "%s%s%s", curl_easy_strerror(cc),
                 r->curl_err[0] ? ": " : "", r->curl_err);
        why = detail;
        transient = curl_transient(cc) || (cc == CURLE_WRITE_ERROR && !r->overflow);
        if (r->overflow)
            code = MF_ECORRUPT;
    } else {
        if (r->errbody.size)
            (void)mf__s3xml_error_parse(&xe, r->errbody.ptr, r->errbody.size);
        mf_error_clear();
        if (!xe.code[0])
            snprintf(xe.code, sizeof xe.code, "%s", status_code_name(r->status));
        if (!xe.request_id[0])
            snprintf(xe.request_id, sizeof xe.request_id, "%s", r->request_id);
        transient = status_transient(r->status, xe.code);
        switch (r->status) {
        case 403:
            code = MF_EACCESS;
            break;
        case 404:
            code = strcmp(xe.code, "NoSuchBucket") == 0 ? MF_EIO : MF_ENOTFOUND;
            break;
        case 412:
            code = MF_EEXISTS;
            break;
        case 416:
            code = MF_ERANGE;
            break;
        default:
            code = MF_EIO;
        }
        /* A token that expired in flight: fetch new credentials once. A
         * HEAD's answer has no body to say so, so a 400 or 403 to one may
         * be that too; but it is also S3's answer for a missing key
         * without s3:ListBucket, so such a guess forces a fetch at most
         * once a minute. Either way, a request signed before the last
         * fetch just tries again. */
        if ((r->status == 400 || r->status == 403) && r->attempt < 2) {
            bool told = strcmp(xe.code, "ExpiredToken") == 0;
            bool guess = r->errbody.size == 0 && strcmp(r->method, "HEAD") == 0;
            if (told || guess) {
                int64_t mono = mf__mono_us();
                pthread_mutex_lock(&s->cred_lock);
                if (mf__s3creds_refreshable(&s->cfg)) {
                    if (r->cred_gen != s->cred_gen) {
                        transient = true; /* new keys since it was signed */
                    } else if (s->cred_fetching) {
                        s->cred_force = true; /* the retry waits for that fetch */
                        transient = true;
                    } else if (told || !s->cred_forced_at ||
                               mono - s->cred_forced_at >= FORCED_REFRESH_GAP_US) {
                        s->cred_force = true;
                        s->cred_forced_at = mono;
                        transient = true;
                    }
                }
                pthread_mutex_unlock(&s->cred_lock);
            }
        }
        why = NULL;
    }
    int64_t now = mf__mono_us();
    if (transient && r->attempt <= s->retries) {
        uint64_t cap = (uint64_t)BACKOFF_BASE_US << (r->attempt - 1 < 20 ? r->attempt - 1 : 20);
        if (cap > BACKOFF_CAP_US)
            cap = BACKOFF_CAP_US;
        uint64_t rnd = 0;
        if (RAND_bytes((unsigned char *)&rnd, sizeof rnd) != 1)
            rnd = (uint64_t)now * 6364136223846793005ull;
        int64_t delay = (int64_t)(rnd % (cap + 1));
        if (now + delay - r->first_us <= s->retry_time_us) {
            r->not_before_us = now + delay;
            return true;
        }
    }
    /* Final: name the operation, the key, what came back and how hard we tried. */
    char tries[96] = "";
    if (r->attempt > 1)
        snprintf(tries, sizeof tries, " (gave up after %u attempts in %.1f s)", r->attempt,
                 (double)(now - r->first_us) / 1e6);
    const char *k = r->key ? r->key : "";
    if (why) {
        r->rc = mf__error_set(code, "S3 %s '%s' in %s: %s%s", r->op, k, s->root, why, tries);
    } else if (code == MF_ENOTFOUND && strcmp(r->method, "HEAD") != 0 &&
               strcmp(xe.code, "NoSuchKey") == 0) {
        r->rc = mf__error_set(code, "S3 %s '%s' in %s: no such key (request id %s)", r->op, k,
                              s->root, xe.request_id[0] ? xe.request_id : "none");
    } else {
        char hint[256] = "";
        if (r->bucket_region[0] && strcmp(r->bucket_region, s->cfg.region) != 0)
            snprintf(hint, sizeof hint, "; the bucket is in region '%.60s', not '%.60s' "
                     "(set AWS_REGION)", r->bucket_region, s->cfg.region);
        else if (code == MF_EACCESS) {
            pthread_mutex_lock(&s->cred_lock);
            snprintf(hint, sizeof hint, "; check the credentials (from %s)",
                     s->cfg.source ? s->cfg.source : "nowhere");
            pthread_mutex_unlock(&s->cred_lock);
        }
        else if (strcmp(xe.code, "NoSuchBucket") == 0)
            snprintf(hint, sizeof hint, "; bucket '%.64s' does not exist", s->bucket);
        r->rc = mf__error_set(code, "S3 %s '%s' in %s: HTTP %ld %s%s%s (request id %s)%s%s",
                              r->op, k, s->root, r->status, xe.code,
                              xe.message[0] ? ": " : "", xe.message,
                              xe.request_id[0] ? xe.request_id : "none", hint, tries);
    }
    mf__buf_clear(&r->msg);
    mf__buf_puts(&r->msg, mf_error_last());
    r->done = true;
    return false;
}

/* ---------------------------------------------------------- the loop */

static CURLM *pool_get(s3ds *s)
{
    pthread_mutex_lock(&s->pool_lock);
    mpool_ent *e = s->pool;
    if (e)
        s->pool = e->next;
    pthread_mutex_unlock(&s->pool_lock);
    if (e) {
        CURLM *m = e->multi;
        free(e);
        return m;
    }
    return curl_multi_init();
}

static void pool_put(s3ds *s, CURLM *m)
{
    mpool_ent *e = malloc(sizeof *e);
    if (!e) {
        curl_multi_cleanup(m);
        return;
    }
    e->multi = m;
    pthread_mutex_lock(&s->pool_lock);
    e->next = s->pool;
    s->pool = e;
    pthread_mutex_unlock(&s->pool_lock);
}

static void req_detach(CURLM *m, req *r)
{
    if (!r->easy)
        return;
    curl_multi_remove_handle(m, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    if (r->active) {
        r->active = false;
        slot_release(r->s);
    }
}

/*
 * Run requests to completion: at most the datastore's parallelism in
 * flight, retrying each on its own. The first request that fails for good
 * stops the rest (in flight ones are abandoned) and its error is returned;
 * otherwise MF_OK. Each request's rc tells its own outcome.
 */
static int run(s3ds *s, req **rs, size_t n)
{
    CURLM *m = pool_get(s);
    if (!m)
        return mf__error_oom();
    size_t active = 0, done = 0;
    int rc = MF_OK;
    req *failed = NULL;
    for (size_t i = 0; i < n; i++)
        rs[i]->done = rs[i]->active = false;
    while (done < n && !failed) {
        int64_t now = mf__mono_us(), next = INT64_MAX;
        for (size_t i = 0; i < n && !failed; i++) {
            req *r = rs[i];
            if (r->done || r->active)
                continue;
            if (r->not_before_us > now) {
                if (r->not_before_us < next)
                    next = r->not_before_us;
                continue;
            }
            if (!slot_take(s, active == 0))
                break;
            r->active = true;
            int src = req_start(r);
            if (src == MF_OK && curl_multi_add_handle(m, r->easy) != CURLM_OK)
                src = mf__error_oom();
            if (src != MF_OK) {
                if (r->easy) {
                    curl_easy_cleanup(r->easy);
                    r->easy = NULL;
                }
                r->active = false;
                slot_release(s);
                r->rc = src;
                r->done = true;
                mf__buf_clear(&r->msg);
                mf__buf_puts(&r->msg, mf_error_last());
                failed = r;
                break;
            }
            active++;
        }
        if (failed)
            break;
        if (!active) {
            if (next != INT64_MAX) {
                int64_t wait = next - mf__mono_us();
                if (wait > 0) {
                    struct timespec ts = { (time_t)(wait / 1000000), (long)(wait % 1000000) * 1000 };
                    nanosleep(&ts, NULL);
                }
            }
            continue;
        }
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            req *r = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            CURLcode cc = msg->data.result;
            bool again = req_finish(r, cc);
            req_detach(m, r);
            active--;
            if (!again && r->done) {
                done++;
                if (r->rc != MF_OK && !failed)
                    failed = r;
            }
        }
        if (failed || done == n)
            break;
        int timeout = 200;
        if (next != INT64_MAX) {
            int64_t w = (next - mf__mono_us()) / 1000;
            if (w < timeout)
                timeout = w < 1 ? 1 : (int)w;
        }
        if (running)
            curl_multi_poll(m, NULL, 0, timeout, NULL);
    }
    for (size_t i = 0; i < n; i++)
        req_detach(m, rs[i]);
    pool_put(s, m);
    if (failed) {
        rc = failed->rc;
        /* The message of the failure, not of a later one. */
        mf__error_set(rc, "%s", failed->msg.ptr ? failed->msg.ptr : "");
    }
    return rc;
}

static int run1(req *r)
{
    req *one = r;
    return run(r->s, &one, 1);
}

/* ------------------------------------------------------------ methods */

/* HEAD: MF_OK with size and mtime, MF_ENOTFOUND, or an error. */
static int head(s3ds *s, const char *key, uint64_t *size, int64_t *mtime)
{
    req r;
    req_init(&r, s, "HEAD", "HEAD", key);
    int rc = req_path(&r, key);
    if (!rc)
        rc = run1(&r);
    if (rc == MF_ENOTFOUND) {
        rc = mf__error_set(MF_ENOTFOUND, "'%s' not found in %s", key, s->root);
    } else if (rc == MF_OK) {
        if (size)
            *size = r.clen;
        if (mtime)
            *mtime = r.last_modified;
    }
    req_dispose(&r);
    return rc;
}

static int s3_exists(mf_datastore *ds, const char *key, uint64_t *size)
{
    s3ds *s = S(ds);
    int rc = mf_datastore_key_check(key);
    return rc ? rc : head(s, key, size, NULL);
}

/* Refresh an object's modification time by copying it onto itself. */
static int touch(s3ds *s, const char *key)
{
    req r;
    mf_buf src = MF_BUF_INIT, body = MF_BUF_INIT;
    req_init(&r, s, "CopyObject", "PUT", key);
    r.mem = &body;
    r.mem_cap = ERR_BODY_MAX;
    int rc = req_path(&r, key);
    if (!rc)
        rc = mf__buf_printf(&src, "/%s/", s->bucket);
    if (!rc)
        rc = mf__sigv4_uri_append(&src, s->prefix, strlen(s->prefix), true);
    if (!rc)
        rc = mf__sigv4_uri_append(&src, key, strlen(key), true);
    if (!rc) {
        req_header(&r, "x-amz-copy-source", src.ptr);
        req_header(&r, "x-amz-metadata-directive", "REPLACE");
        rc = run1(&r);
    }
    if (rc == MF_OK && body.size) {
        /* A copy can fail after its 200: the body is then an <Error>. */
        mf__s3xml_error xe;
        if (mf__s3xml_error_parse(&xe, body.ptr, body.size) == MF_OK)
            rc = mf__error_set(MF_EIO, "S3 CopyObject '%s' in %s: %s: %s (request id %s)", key,
                               s->root, xe.code, xe.message, xe.request_id);
        else
            mf_error_clear();
    }
    mf_buf_dispose(&src);
    mf_buf_dispose(&body);
    req_dispose(&r);
    return rc;
}

/* The ETag S3 gives a single PUT of these bytes: their MD5, quoted. */
static int etag_of(const mf_ds_iovec *iov, size_t niov, char out[35])
{
    unsigned char md[16];
    int rc = md5_iov(iov, niov, md);
    if (rc)
        return rc;
    out[0] = '"';
    mf__hex(md, 16, out + 1);
    out[33] = '"';
    out[34] = '\0';
    return MF_OK;
}

/* After a 412 on a retried conditional write: is the object there the one
 * an earlier attempt of ours wrote (its answer lost)? */
static bool ours_after_all(s3ds *s, const char *key, const mf_ds_iovec *iov, size_t niov,
                           uint64_t total, uint32_t nparts)
{
    req r;
    char want[35];
    bool ours = false;
    req_init(&r, s, "HEAD", "HEAD", key);
    if (req_path(&r, key) == MF_OK && run1(&r) == MF_OK && r.clen == total) {
        if (nparts) {
            /* A multipart ETag ends in "-<parts>\"". */
            char tail[24];
            int n = snprintf(tail, sizeof tail, "-%u\"", nparts);
            size_t el = strlen(r.etag);
            ours = el > (size_t)n && strcmp(r.etag + el - (size_t)n, tail) == 0;
        } else {
            ours = etag_of(iov, niov, want) == MF_OK && strcmp(r.etag, want) == 0;
        }
    }
    req_dispose(&r);
    mf_error_clear();
    return ours;
}

static int put_single(s3ds *s, const char *key, const mf_ds_iovec *iov, size_t niov,
                      uint64_t total, bool if_none_match)
{
    req r;
    req_init(&r, s, "PUT", "PUT", key);
    int rc = req_path(&r, key);
    req_body(&r, iov, niov, 0, total);
    if (if_none_match)
        req_header(&r, "If-None-Match", "*");
    if (!rc)
        rc = run1(&r);
    if (rc == MF_EEXISTS && r.attempt > 1 && ours_after_all(s, key, iov, niov, total, 0))
        rc = MF_OK;
    else if (rc == MF_EEXISTS)
        rc = mf__error_set(MF_EEXISTS, "'%s' already exists in %s", key, s->root);
    req_dispose(&r);
    return rc;
}

static void abort_upload(s3ds *s, const char *key, const char *upload_id)
{
    req r;
    req_init(&r, s, "AbortMultipartUpload", "DELETE", key);
    if (req_path(&r, key) == MF_OK) {
        req_query(&r, "uploadId", upload_id);
        (void)run1(&r);
    }
    req_dispose(&r);
    mf_error_clear();
}

static int put_multipart(s3ds *s, const char *key, const mf_ds_iovec *iov, size_t niov,
                         uint64_t total, bool if_none_match)
{
    uint64_t part = s->part_size;
    if ((total + part - 1) / part > MAX_PARTS) {
        part = (total + MAX_PARTS - 1) / MAX_PARTS;
        part = (part + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
    }
    size_t nparts = (size_t)((total + part - 1) / part);
    mf_buf body = MF_BUF_INIT;
    mf__s3xml_initiate init;
    req r;
    req **rs = NULL;
    req *parts = NULL;
    char (*nums)[24] = NULL;
    mf__s3xml_part *xp = NULL;
    bool started = false;

    /* Initiate. */
    req_init(&r, s, "CreateMultipartUpload", "POST", key);
    r.mem = &body;
    r.mem_cap = ERR_BODY_MAX;
    int rc = req_path(&r, key);
    req_query(&r, "uploads", NULL);
    if (!rc)
        rc = run1(&r);
    if (!rc && (rc = mf__s3xml_initiate_parse(&init, body.ptr, body.size)) != MF_OK)
        mf__error_wrap("S3 CreateMultipartUpload '%s' in %s (request id %s)", key, s->root,
                       r.request_id);
    req_dispose(&r);
    if (rc)
        goto out;
    started = true;

    /* Parts, in parallel. */
    parts = calloc(nparts, sizeof *parts);
    rs = calloc(nparts, sizeof *rs);
    nums = calloc(nparts, sizeof *nums);
    xp = calloc(nparts, sizeof *xp);
    if (!parts || !rs || !nums || !xp) {
        rc = mf__error_oom();
        goto out;
    }
    for (size_t i = 0; i < nparts && !rc; i++) {
        req *p = &parts[i];
        req_init(p, s, "UploadPart", "PUT", key);
        snprintf(nums[i], sizeof nums[i], "%zu", i + 1);
        rc = req_path(p, key);
        req_query(p, "partNumber", nums[i]);
        req_query(p, "uploadId", init.upload_id);
        uint64_t off = (uint64_t)i * part;
        req_body(p, iov, niov, off, total - off < part ? total - off : part);
        rs[i] = p;
    }
    if (!rc)
        rc = run(s, rs, nparts);
    for (size_t i = 0; !rc && i < nparts; i++) {
        if (!parts[i].etag[0])
            rc = mf__error_set(MF_EIO, "S3 UploadPart %zu of '%s' in %s: no ETag in the answer "
                               "(request id %s)", i + 1, key, s->root, parts[i].request_id);
        xp[i].number = (uint32_t)(i + 1);
        xp[i].etag = parts[i].etag;
    }

    /* Complete. */
    mf_buf xml = MF_BUF_INIT;
    if (!rc)
        rc = mf__s3xml_complete_body(&xml, xp, nparts);
    if (!rc) {
        mf__s3xml_complete done;
        mf__buf_clear(&body);
        for (unsigned tries = 0;; tries++) {
            req_init(&r, s, "CompleteMultipartUpload", "POST", key);
            r.mem = &body;
            r.mem_cap = ERR_BODY_MAX;
            rc = req_path(&r, key);
            req_query(&r, "uploadId", init.upload_id);
            if (if_none_match)
                req_header(&r, "If-None-Match", "*");
            mf_ds_iovec v = { xml.ptr, xml.size };
            req_body(&r, &v, 1, 0, xml.size);
            if (!rc)
                rc = run1(&r);
            if (!rc && (rc = mf__s3xml_complete_parse(&done, body.ptr, body.size)) == MF_OK &&
                done.failed) {
                /* 200 then an <Error>: retry what S3 says is transient. */
                bool again = (strcmp(done.error.code, "InternalError") == 0 ||
                              strcmp(done.error.code, "SlowDown") == 0) && tries < s->retries;
                rc = mf__error_set(MF_EIO, "S3 CompleteMultipartUpload '%s' in %s: %s: %s "
                                   "(request id %s)", key, s->root, done.error.code,
                                   done.error.message, done.error.request_id);
                req_dispose(&r);
                if (again)
                    continue;
                break;
            }
            if (rc == MF_ENOTFOUND && tries == 0 && r.attempt > 1) {
                /* NoSuchUpload on a retry: the first attempt completed. */
                uint64_t size = 0;
                req_dispose(&r);
                if (head(s, key, &size, NULL) == MF_OK && size == total) {
                    rc = MF_OK;
                    started = false;
                }
                break;
            }
            if (rc == MF_EEXISTS && r.attempt > 1 &&
                ours_after_all(s, key, iov, niov, total, (uint32_t)nparts)) {
                rc = MF_OK;
                started = false;
            } else if (rc == MF_EEXISTS) {
                rc = mf__error_set(MF_EEXISTS, "'%s' already exists in %s", key, s->root);
            }
            req_dispose(&r);
            break;
        }
        if (!rc)
            started = false;
    }
    mf_buf_dispose(&xml);
out:
    if (started) {
        /* Keep the failure's message: the abort is best effort. */
        mf_buf msg = MF_BUF_INIT;
        mf__buf_puts(&msg, mf_error_last());
        abort_upload(s, key, init.upload_id);
        mf__error_set(rc, "%s", msg.ptr ? msg.ptr : "");
        mf_buf_dispose(&msg);
    }
    for (size_t i = 0; parts && i < nparts; i++)
        req_dispose(&parts[i]);
    free(parts);
    free(rs);
    free(nums);
    free(xp);
    mf_buf_dispose(&body);
    return rc;
}

/* The vtable's codes: anything else the requests said is an I/O error
 * (the message keeps the details). MF_EACCESS passes: it tells a host
 * what to fix. */
static int contract(int rc)
{
    switch (rc) {
    case MF_OK: case MF_EEXISTS: case MF_EIO: case MF_EACCESS: case MF_ENOMEM:
    case MF_EINVAL: case MF_EUSER:
        return rc;
    default:
        return mf__error_recode(MF_EIO);
    }
}

static int put_impl(mf_datastore *ds, const char *key, const mf_ds_iovec *iov, size_t niov,
                    uint32_t flags);

static int s3_put(mf_datastore *ds, const char *key, const mf_ds_iovec *iov, size_t niov,
                  uint32_t flags)
{
    return contract(put_impl(ds, key, iov, niov, flags));
}

static int put_impl(mf_datastore *ds, const char *key, const mf_ds_iovec *iov, size_t niov,
                    uint32_t flags)
{
    s3ds *s = S(ds);
    int rc = mf_datastore_key_check(key);
    if (rc)
        return rc;
    uint64_t total = 0;
    for (size_t i = 0; i < niov; i++) {
        if (!iov[i].base && iov[i].len)
            return mf__error_set(MF_EINVAL, "put '%s': NULL piece %zu", key, i);
        total += iov[i].len;
    }
    bool if_none_match = false;
    if ((flags & MF_DS_PUT_IF_ABSENT) && (flags & MF_DS_PUT_CONTENT) && total >= GUESS_NEW_MIN &&
        atomic_load(&s->absent_streak) >= GUESS_NEW_STREAK) {
        /* A new value is being stored (its last chunks were all new): save
         * the HEAD round trip and let If-None-Match keep the old blob. A
         * 412 means it existed after all: check it as below, and go back
         * to HEAD first until new blobs come in a row again. */
        rc = total > s->threshold ? put_multipart(s, key, iov, niov, total, true)
                                  : put_single(s, key, iov, niov, total, true);
        if (rc != MF_EEXISTS)
            return rc;
        mf_error_clear();
        atomic_store(&s->absent_streak, 0);
    }
    if (flags & MF_DS_PUT_IF_ABSENT) {
        uint64_t size = 0;
        int64_t mtime = 0;
        rc = head(s, key, &size, &mtime);
        if (rc == MF_OK) {
            /* S3 writes whole objects or none, so a blob of the right
             * size is the blob; a wrong size is damage to replace. */
            atomic_store(&s->absent_streak, 0);
            if (!(flags & MF_DS_PUT_CONTENT) || size == total) {
                if (mtime && (int64_t)time(NULL) - mtime >= s->refresh_age &&
                    size <= MAX_PART && /* CopyObject's limit */
                    (rc = touch(s, key)) != MF_OK)
                    return rc;
                return mf__error_set(MF_EEXISTS, "'%s' already exists in %s", key, s->root);
            }
        } else if (rc != MF_ENOTFOUND) {
            return rc;
        } else {
            mf_error_clear();
            if_none_match = true;
            if (flags & MF_DS_PUT_CONTENT)
                atomic_fetch_add(&s->absent_streak, 1);
        }
    }
    if (total > s->threshold)
        return put_multipart(s, key, iov, niov, total, if_none_match);
    return put_single(s, key, iov, niov, total, if_none_match);
}

/* A read that yields no bytes: MF_OK (empty) when `off` is at most the
 * object's size, MF_ERANGE past it, or the HEAD's error. */
static int read_nothing(s3ds *s, const char *key, uint64_t off, mf_buf *out)
{
    uint64_t size = 0;
    int rc = head(s, key, &size, NULL);
    if (rc != MF_OK)
        return rc;
    if (off > size)
        return mf__error_set(MF_ERANGE, "'%s' in %s: offset %" PRIu64 " past the end "
                             "(%" PRIu64 " bytes)", key, s->root, off, size);
    return mf__buf_grow(out, 0);
}

static int s3_get(mf_datastore *ds, const char *key, uint64_t off, uint64_t len, mf_buf *out)
{
    s3ds *s = S(ds);
    int rc = mf_datastore_key_check(key);
    if (rc)
        return rc;
    mf__buf_clear(out);
    if (len == 0)
        return read_nothing(s, key, off, out);
    /* The first range tells the object's size; small objects end there. */
    uint64_t first = len < s->part_size ? len : s->part_size;
    req r;
    req_init(&r, s, "GET", "GET", key);
    r.mem = out;
    r.mem_cap = first;
    rc = req_path(&r, key);
    if (rc == MF_OK && off + first - 1 < off) /* wraps: read to the end */
        snprintf(r.range, sizeof r.range, "bytes=%" PRIu64 "-", off);
    else
        snprintf(r.range, sizeof r.range, "bytes=%" PRIu64 "-%" PRIu64, off, off + first - 1);
    /* Most objects are small: on_write grows the buffer past this. */
    if (!rc)
        rc = mf__buf_grow(out, (size_t)(first < (1u << 20) ? first : (1u << 20)));
    if (!rc)
        rc = run1(&r);
    if (rc == MF_ERANGE) {
        /* Past the end, or at the end (an empty object): find out which. */
        req_dispose(&r);
        mf__buf_clear(out);
        return read_nothing(s, key, off, out);
    }
    if (rc == MF_ENOTFOUND)
        rc = mf__error_set(MF_ENOTFOUND, "'%s' not found in %s", key, s->root);
    uint64_t total = r.total, status = (uint64_t)r.status;
    req_dispose(&r);
    if (rc)
        goto fail;
    if (status == 200 && off != 0) {
        /* The server ignored Range and sent the object from its start. */
        rc = mf__error_set(MF_EIO, "S3 GET '%s' in %s: the server ignored the Range header",
                           key, s->root);
        goto fail;
    }
    uint64_t end = len == MF_DS_TO_END || len > total - off ? total : off + len;
    uint64_t want = end - off;
    if (out->size >= want) {
        out->size = (size_t)want;
        out->ptr[out->size] = '\0';
        return MF_OK;
    }
    /* The rest, as parallel ranges straight into the buffer. */
    if (want > SIZE_MAX - 1) {
        rc = mf__error_set(MF_ENOMEM, "'%s' in %s: %" PRIu64 " bytes do not fit in memory",
                           key, s->root, want);
        goto fail;
    }
    size_t have = out->size;
    if ((rc = mf__buf_grow(out, (size_t)want)) != MF_OK)
        goto fail;
    uint64_t rest = want - have;
    size_t n = (size_t)((rest + s->part_size - 1) / s->part_size);
    req *parts = calloc(n, sizeof *parts);
    req **rs = calloc(n, sizeof *rs);
    if (!parts || !rs) {
        free(parts);
        free(rs);
        rc = mf__error_oom();
        goto fail;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t a = have + (uint64_t)i * s->part_size;
        uint64_t b = a + s->part_size < want ? a + s->part_size : want;
        req *p = &parts[i];
        req_init(p, s, "GET", "GET", key);
        rc = req_path(p, key);
        p->sink = SINK_AT;
        p->dst = (uint8_t *)out->ptr + a;
        p->dst_cap = b - a;
        snprintf(p->range, sizeof p->range, "bytes=%" PRIu64 "-%" PRIu64, off + a, off + b - 1);
        rs[i] = p;
    }
    if (!rc)
        rc = run(s, rs, n);
    for (size_t i = 0; !rc && i < n; i++)
        if (parts[i].got != parts[i].dst_cap || parts[i].total != total)
            rc = mf__error_set(MF_EIO, "S3 GET '%s' in %s: the object changed while it was "
                               "read (%" PRIu64 " bytes, then %" PRIu64 ")", key, s->root,
                               total, parts[i].total);
    for (size_t i = 0; i < n; i++)
        req_dispose(&parts[i]);
    free(parts);
    free(rs);
    if (rc)
        goto fail;
    out->size = (size_t)want;
    out->ptr[out->size] = '\0';
    return MF_OK;
fail:
    mf__buf_clear(out);
    return rc;
}

static int s3_del(mf_datastore *ds, const char *key)
{
    s3ds *s = S(ds);
    int rc = mf_datastore_key_check(key);
    if (rc)
        return rc;
    /* S3 answers 204 for missing keys too; the contract says ENOTFOUND. */
    if ((rc = head(s, key, NULL, NULL)) != MF_OK)
        return rc;
    req r;
    req_init(&r, s, "DELETE", "DELETE", key);
    rc = req_path(&r, key);
    if (!rc)
        rc = run1(&r);
    req_dispose(&r);
    return rc;
}

/* ---- listing */

typedef struct list_ctx {
    s3ds *s;
    mf_ds_list_cb cb;
    int (*dir_cb)(const char *dir, void *payload);
    void *payload;
    size_t strip; /* bytes of the root prefix to remove */
    bool stopped;
} list_ctx;

static int list_object(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    list_ctx *c = payload;
    if (!c->cb || strlen(key) <= c->strip)
        return 0;
    const char *k = key + c->strip;
    /* Foreign objects (directory markers, keys we never write) are skipped. */
    if (mf_datastore_key_check(k) != MF_OK) {
        mf_error_clear();
        return 0;
    }
    if (c->cb(k, size, mtime, c->payload)) {
        c->stopped = true;
        return 1;
    }
    return 0;
}

static int list_prefix(const char *prefix, void *payload)
{
    list_ctx *c = payload;
    if (!c->dir_cb || strlen(prefix) <= c->strip)
        return 0;
    if (c->dir_cb(prefix + c->strip, c->payload)) {
        c->stopped = true;
        return 1;
    }
    return 0;
}

static int list_pages(s3ds *s, const char *prefix, bool dirs, list_ctx *c)
{
    mf_buf full = MF_BUF_INIT, token = MF_BUF_INIT, body = MF_BUF_INIT;
    int rc = mf__buf_printf(&full, "%s%s", s->prefix, prefix);
    c->strip = strlen(s->prefix);
    mf__s3xml_list_cbs cbs = { list_object, NULL, list_prefix, c };
    bool more = true;
    while (!rc && more) {
        req r;
        req_init(&r, s, "ListObjectsV2", "GET", prefix);
        r.mem = &body;
        r.mem_cap = MF__S3XML_DOC_MAX;
        rc = req_path(&r, NULL);
        req_query(&r, "list-type", "2");
        req_query(&r, "prefix", full.ptr);
        req_query(&r, "encoding-type", "url");
        if (dirs)
            req_query(&r, "delimiter", "/");
        if (token.size)
            req_query(&r, "continuation-token", token.ptr);
        if (!rc)
            rc = run1(&r);
        mf__s3xml_listing page = MF__S3XML_LISTING_INIT;
        if (!rc) {
            rc = mf__s3xml_list_parse(&page, body.ptr, body.size, MF__S3XML_URL, &cbs);
            if (rc == MF_EUSER || c->stopped)
                rc = MF_EUSER;
            else if (rc)
                mf__error_wrap("S3 ListObjectsV2 '%s' in %s (request id %s)", prefix, s->root,
                               r.request_id);
        }
        if (!rc) {
            more = page.is_truncated;
            if (more)
                rc = mf__buf_set(&token, page.next_token.ptr, page.next_token.size);
        }
        mf__s3xml_listing_dispose(&page);
        req_dispose(&r);
    }
    mf_buf_dispose(&full);
    mf_buf_dispose(&token);
    mf_buf_dispose(&body);
    return rc;
}

static int s3_list(mf_datastore *ds, const char *prefix, mf_ds_list_cb cb, void *payload)
{
    s3ds *s = S(ds);
    int rc = mf__datastore_prefix_check(prefix ? prefix : "");
    if (rc)
        return rc;
    list_ctx c = { s, cb, NULL, payload, 0, false };
    return contract(list_pages(s, prefix ? prefix : "", false, &c));
}

int mf__s3_list_dirs(mf_datastore *ds, const char *prefix,
                     int (*cb)(const char *dir, void *payload), void *payload)
{
    if (!mf__s3_is(ds))
        return mf__error_set(MF_EINVAL, "not an S3 datastore");
    s3ds *s = S(ds);
    int rc = mf__datastore_prefix_check(prefix ? prefix : "");
    if (rc)
        return rc;
    list_ctx c = { s, NULL, cb, payload, 0, false };
    return contract(list_pages(s, prefix ? prefix : "", true, &c));
}

/* ---- batch delete */

typedef struct del_ctx {
    s3ds *s;
    uint64_t failed;
    int first;
    mf_buf msg; /* the first refusal's message */
} del_ctx;

static int del_entry(const char *key, const char *code, const char *message, void *payload)
{
    del_ctx *d = payload;
    if (!code)
        return 0;
    d->failed++;
    if (!d->first) {
        d->first = strcmp(code, "AccessDenied") == 0 ? MF_EACCESS : MF_EIO;
        mf__buf_printf(&d->msg, "S3 DeleteObjects in %s: '%s': %s: %s", d->s->root, key, code,
                       message);
    }
    return 0;
}

/* The Content-MD5 header of a body: its MD5 in base64. */
static int content_md5(const void *data, size_t len, char out[32])
{
    unsigned char md[16];
    mf_ds_iovec v = { data, len };
    int rc = md5_iov(&v, 1, md);
    if (rc == MF_OK)
        EVP_EncodeBlock((unsigned char *)out, md, 16);
    return rc;
}

int mf__s3_delete_batch(mf_datastore *ds, const char *const *keys, size_t n, uint64_t *failed)
{
    if (!mf__s3_is(ds))
        return mf__error_set(MF_EINVAL, "not an S3 datastore");
    s3ds *s = S(ds);
    del_ctx d = { s, 0, 0, MF_BUF_INIT };
    mf_buf xml = MF_BUF_INIT, body = MF_BUF_INIT;
    const char **full = calloc(n < MF__S3XML_DELETE_MAX ? (n ? n : 1) : MF__S3XML_DELETE_MAX,
                               sizeof *full);
    int rc = full ? MF_OK : mf__error_oom();
    for (size_t at = 0; !rc && at < n; at += MF__S3XML_DELETE_MAX) {
        size_t m = n - at < MF__S3XML_DELETE_MAX ? n - at : MF__S3XML_DELETE_MAX;
        mf_buf names = MF_BUF_INIT;
        size_t *offs = calloc(m, sizeof *offs);
        if (!offs)
            rc = mf__error_oom();
        for (size_t i = 0; !rc && i < m; i++) {
            rc = mf_datastore_key_check(keys[at + i]);
            offs[i] = names.size;
            if (!rc)
                rc = mf__buf_printf(&names, "%s%s", s->prefix, keys[at + i]);
            if (!rc)
                rc = mf__buf_put(&names, "", 1);
        }
        for (size_t i = 0; !rc && i < m; i++)
            full[i] = names.ptr + offs[i];
        if (!rc)
            rc = mf__s3xml_delete_body(&xml, full, m, true);
        char md5[32];
        if (!rc)
            rc = content_md5(xml.ptr, xml.size, md5);
        if (!rc) {
            req r;
            req_init(&r, s, "DeleteObjects", "POST", keys[at]);
            r.mem = &body;
            r.mem_cap = MF__S3XML_DOC_MAX;
            rc = req_path(&r, NULL);
            req_query(&r, "delete", NULL);
            req_header(&r, "Content-MD5", md5);
            mf_ds_iovec v = { xml.ptr, xml.size };
            req_body(&r, &v, 1, 0, xml.size);
            if (!rc)
                rc = run1(&r);
            mf__s3xml_delete res;
            if (!rc && (rc = mf__s3xml_delete_parse(&res, body.ptr, body.size, del_entry, &d)))
                mf__error_wrap("S3 DeleteObjects in %s (request id %s)", s->root, r.request_id);
            req_dispose(&r);
        }
        free(offs);
        mf_buf_dispose(&names);
    }
    free(full);
    mf_buf_dispose(&xml);
    mf_buf_dispose(&body);
    if (failed)
        *failed = d.failed;
    if (!rc && d.first)
        rc = mf__error_set(d.first, "%s", d.msg.ptr ? d.msg.ptr : "S3 DeleteObjects failed");
    mf_buf_dispose(&d.msg);
    return rc;
}

/* ------------------------------------------------------- open and free */

static void s3_free(mf_datastore *ds)
{
    s3ds *s = S(ds);
    if (!s)
        return;
    while (s->pool) {
        mpool_ent *e = s->pool;
        s->pool = e->next;
        curl_multi_cleanup(e->multi);
        free(e);
    }
    if (s->share)
        curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->share_lock[i]);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_mutex_destroy(&s->slot_lock);
    pthread_cond_destroy(&s->slot_cond);
    pthread_mutex_destroy(&s->cred_lock);
    pthread_cond_destroy(&s->cred_cond);
    pthread_mutex_destroy(&s->up.lock);
    pthread_mutex_destroy(&s->down.lock);
    mf__s3cfg_dispose(&s->cfg);
    free(s->root);
    free(s->bucket);
    free(s->prefix);
    free(s->base);
    free(s->host);
    free(s);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *ud)
{
    (void)h;
    (void)a;
    pthread_mutex_lock(&((s3ds *)ud)->share_lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    pthread_mutex_unlock(&((s3ds *)ud)->share_lock[data]);
}

/* Split "s3://bucket/prefix" into bucket and a prefix ending in '/'. */
static int parse_root(s3ds *s, const char *root)
{
    if (!root || strncmp(root, "s3://", 5) != 0)
        return mf__error_set(MF_EINVAL, "S3 datastore root '%.200s': expected "
                             "s3://bucket[/prefix]", root ? root : "(null)");
    const char *b = root + 5, *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);
    if (bl < 3 || bl > 63)
        return mf__error_set(MF_EINVAL, "S3 datastore root '%.200s': a bucket name has 3 to "
                             "63 characters", root);
    for (size_t i = 0; i < bl; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || (c >= 'A' && c <= 'Z')))
            return mf__error_set(MF_EINVAL, "S3 datastore root '%.200s': bucket names use "
                                 "a-z 0-9 . - only", root);
    }
    if (!(s->bucket = strndup(b, bl)))
        return mf__error_oom();
    mf_buf p = MF_BUF_INIT;
    const char *rest = slash ? slash + 1 : "";
    while (*rest == '/')
        rest++;
    size_t rl = strlen(rest);
    while (rl && rest[rl - 1] == '/')
        rl--;
    int rc = MF_OK;
    if (rl) {
        /* Every component must be a valid key component, so that keys
         * under it are too (and nothing escapes with "..". */
        char *tmp = strndup(rest, rl);
        if (!tmp)
            return mf__error_oom();
        rc = mf_datastore_key_check(tmp);
        free(tmp);
        if (rc)
            return mf__error_wrap("S3 datastore root '%.200s': the prefix", root);
        rc = mf__buf_put(&p, rest, rl);
        if (!rc)
            rc = mf__buf_puts(&p, "/");
    } else {
        rc = mf__buf_grow(&p, 0);
    }
    if (rc) {
        mf_buf_dispose(&p);
        return rc;
    }
    s->prefix = mf__buf_detach(&p, NULL);
    mf_buf r = MF_BUF_INIT;
    if (rl)
        rc = mf__buf_printf(&r, "s3://%s/%.*s", s->bucket, (int)rl, rest);
    else
        rc = mf__buf_printf(&r, "s3://%s", s->bucket);
    s->root = rc ? NULL : mf__buf_detach(&r, NULL);
    mf_buf_dispose(&r);
    return s->root ? MF_OK : mf__error_oom();
}

/* Work out the request base URL and Host header from the endpoint. */
static int resolve_endpoint(s3ds *s)
{
    /* Metaflow's variable wins over the AWS ones, and becomes the
     * configured endpoint: the addressing style depends on it too. */
    const char *over = mf__getenv("METAFLOW_S3_ENDPOINT_URL");
    if (over) {
        char *dup = strdup(over);
        if (!dup)
            return mf__error_oom();
        free(s->cfg.endpoint_url);
        s->cfg.endpoint_url = dup;
    }
    const char *ep = s->cfg.endpoint_url;
    mf_buf b = MF_BUF_INIT, h = MF_BUF_INIT;
    int rc;
    const char *scheme, *auth;
    size_t alen;
    if (ep) {
        if (strncmp(ep, "https://", 8) == 0)
            scheme = "https", auth = ep + 8;
        else if (strncmp(ep, "http://", 7) == 0)
            scheme = "http", auth = ep + 7;
        else
            return mf__error_set(MF_EINVAL, "S3 endpoint '%.200s': expected http:// or "
                                 "https://", ep);
        const char *end = strchr(auth, '/');
        alen = end ? (size_t)(end - auth) : strlen(auth);
        if (end && end[1])
            return mf__error_set(MF_EINVAL, "S3 endpoint '%.200s': a path is not supported",
                                 ep);
        if (!alen || memchr(auth, '@', alen))
            return mf__error_set(MF_EINVAL, "S3 endpoint '%.200s': expected a host[:port]",
                                 ep);
        /* Drop a default port: curl leaves it out of the Host header. */
        if (strcmp(scheme, "https") == 0 && alen > 4 && memcmp(auth + alen - 4, ":443", 4) == 0)
            alen -= 4;
        else if (strcmp(scheme, "http") == 0 && alen > 3 &&
                 memcmp(auth + alen - 3, ":80", 3) == 0)
            alen -= 3;
    } else {
        scheme = "https";
        rc = mf__buf_printf(&h, "s3.%s.amazonaws.com%s", s->cfg.region,
                            strncmp(s->cfg.region, "cn-", 3) == 0 ? ".cn" : "");
        if (rc)
            return rc;
        auth = h.ptr;
        alen = h.size;
    }
    s->path_style = mf__s3cfg_use_path_style(&s->cfg, s->bucket);
    mf_buf host = MF_BUF_INIT;
    rc = s->path_style ? mf__buf_put(&host, auth, alen)
                       : mf__buf_printf(&host, "%s.%.*s", s->bucket, (int)alen, auth);
    if (!rc)
        rc = mf__buf_printf(&b, "%s://%s", scheme, host.ptr);
    mf_buf_dispose(&h);
    if (rc) {
        mf_buf_dispose(&host);
        mf_buf_dispose(&b);
        return rc;
    }
    s->host = mf__buf_detach(&host, NULL);
    s->base = mf__buf_detach(&b, NULL);
    return MF_OK;
}

static int read_settings(s3ds *s)
{
    uint64_t v;
    int rc;
    if ((rc = env_u64("MF_S3_MAX_PARALLEL", DEF_PARALLEL, 1, 1024, false, &v)))
        return rc;
    s->max_parallel = (unsigned)v;
    if ((rc = env_u64("MF_S3_MAX_BANDWIDTH", 0, 0, UINT64_MAX / 2, true, &v)))
        return rc;
    if (v && v < 1024)
        return mf__error_set(MF_EINVAL, "MF_S3_MAX_BANDWIDTH=%" PRIu64 ": at least 1K "
                             "bytes per second", v);
    s->up.rate = s->down.rate = v;
    /* A callback pays for its buffer by sleeping: keep that under ~1/8 s. */
    s->bufsize = 256L * 1024;
    if (v && (uint64_t)s->bufsize > v / 8)
        s->bufsize = v / 8 < 16 * 1024 ? 16 * 1024 : (long)(v / 8);
    const char *rn = mf__getenv("MF_S3_RETRIES") ? "MF_S3_RETRIES" : "METAFLOW_S3_RETRY_COUNT";
    if ((rc = env_u64(rn, DEF_RETRIES, 0, 100, false, &v)))
        return rc;
    s->retries = (unsigned)v;
    if ((rc = env_u64("MF_S3_RETRY_TIME", DEF_RETRY_TIME_S, 0, 86400, false, &v)))
        return rc;
    s->retry_time_us = (int64_t)v * 1000000;
    if ((rc = env_u64("MF_S3_PART_SIZE", DEF_PART, MIN_PART, MAX_PART, true, &v)))
        return rc;
    s->part_size = v;
    if ((rc = env_u64("MF_S3_MULTIPART_THRESHOLD", DEF_THRESHOLD, MIN_PART, MAX_PART, true,
                      &v)))
        return rc;
    s->threshold = v;
    if ((rc = env_u64("MF_S3_CONNECT_TIMEOUT", DEF_CONNECT_S, 1, 3600, false, &v)))
        return rc;
    s->connect_s = (long)v;
    if ((rc = env_u64("MF_S3_STALL_TIMEOUT", DEF_STALL_S, 1, 3600, false, &v)))
        return rc;
    s->stall_s = (long)v;
    if ((rc = env_u64("MF_S3_REFRESH_AGE", DEF_REFRESH_AGE_S, 0, 86400, false, &v)))
        return rc;
    s->refresh_age = (int64_t)v;
    if ((rc = env_u64("MF_S3_CREDENTIALS_REFRESH", DEF_CRED_MARGIN_S, 0, 86400, false, &v)))
        return rc;
    s->cred_margin = (int64_t)v;
    return MF_OK;
}

int mf__s3_open(mf_datastore **out, const char *root)
{
    if (!out)
        return mf__error_set(MF_EINVAL, "S3 open: out is NULL");
    *out = NULL;
    int rc = mf__s3_curl_ready();
    if (rc)
        return rc;
    s3ds *s = calloc(1, sizeof *s);
    if (!s)
        return mf__error_oom();
    pthread_mutex_init(&s->cred_lock, NULL);
    pthread_cond_init(&s->cred_cond, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_mutex_init(&s->slot_lock, NULL);
    pthread_cond_init(&s->slot_cond, NULL);
    pthread_mutex_init(&s->up.lock, NULL);
    pthread_mutex_init(&s->down.lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->share_lock[i], NULL);
    s->up.last_us = s->down.last_us = mf__mono_us();
    mf_datastore_init(&s->vt, MF_DATASTORE_VERSION);
    s->vt.free = s3_free;
    s->vt.put = s3_put;
    s->vt.get = s3_get;
    s->vt.exists = s3_exists;
    s->vt.list = s3_list;
    s->vt.del = s3_del;

    rc = parse_root(s, root);
    if (!rc)
        rc = read_settings(s);
    if (!rc && (rc = mf__s3cfg_load(&s->cfg)) != MF_OK)
        mf__error_wrap("S3 datastore %s", s->root);
    if (!rc)
        rc = resolve_endpoint(s);
    if (!rc && s->cfg.pending) {
        bool last = strcmp(s->cfg.pending, "imds") == 0;
        rc = mf__s3creds_fetch(&s->cfg);
        /* No source had credentials: an access problem, not an I/O one. */
        if ((rc == MF_ENOTFOUND || (rc == MF_EIO && last)))
            rc = mf__error_recode(MF_EACCESS);
        if (rc)
            mf__error_wrap("S3 datastore %s", s->root);
    }
    if (!rc) {
        s->share = curl_share_init();
        if (!s->share) {
            rc = mf__error_oom();
        } else {
            curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
            curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
            curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
            curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
            curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        }
    }
    if (rc) {
        s3_free(&s->vt);
        return rc;
    }
    *out = &s->vt;
    return MF_OK;
}

bool mf__s3_is(const mf_datastore *ds)
{
    return ds && ds->free == s3_free;
}

void mf__s3_stats_get(mf_datastore *ds, mf__s3_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!mf__s3_is(ds))
        return;
    s3ds *s = S(ds);
    out->requests = atomic_load(&s->n_requests);
    out->retries = atomic_load(&s->n_retries);
    out->bytes_up = atomic_load(&s->n_up);
    out->bytes_down = atomic_load(&s->n_down);
    out->max_in_flight = atomic_load(&s->max_seen);
}
