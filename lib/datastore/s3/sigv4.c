/* AWS Signature Version 4 for the S3 datastore (see sigv4.h). */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sigv4.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* The secret is copied, prefixed with "AWS4", into a stack buffer so that
 * no heap block ever holds it. AWS secrets are 40 bytes; S3-compatible
 * stores use at most a few dozen more. */
#define SECRET_MAX 1024
/* 9999-12-31T23:59:59Z: x-amz-date has room for a four-digit year only. */
#define TIME_MAX INT64_C(253402300799)

/* ---- HMAC-SHA256 through EVP_MAC */

/* Fetching the algorithm from the provider costs a lookup on every
 * implicit use; fetch it once per process (as core/hash.c does for SHA-256). */
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *mac_hmac;

static void mac_fetch(void)
{
    mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* One context serves the whole derivation: the digest is set here, each
 * step only re-keys it. */
static EVP_MAC_CTX *hmac_new(void)
{
    pthread_once(&mac_once, mac_fetch);
    if (!mac_hmac)
        return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac_hmac);
    if (!ctx)
        return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static bool hmac(EVP_MAC_CTX *ctx, const uint8_t *key, size_t key_len, const void *msg,
                 size_t len, uint8_t out[MF_SHA256_LEN])
{
    size_t n = 0;
    return EVP_MAC_init(ctx, key, key_len, NULL) == 1 && EVP_MAC_update(ctx, msg, len) == 1 &&
           EVP_MAC_final(ctx, out, &n, MF_SHA256_LEN) == 1 && n == MF_SHA256_LEN;
}

/* kDate = HMAC("AWS4" + secret, date), kRegion, kService, kSigning, then
 * the signature = hex(HMAC(kSigning, string to sign)). Every buffer that
 * held the secret or a key derived from it is wiped before returning. */
static int sign_string(char sig_hex[MF_SHA256_HEX + 1], const char *secret, const char *date,
                       const char *region, const char *service, const mf_buf *sts)
{
    uint8_t k_secret[4 + SECRET_MAX];
    uint8_t k_a[MF_SHA256_LEN], k_b[MF_SHA256_LEN], sig[MF_SHA256_LEN];
    size_t secret_len = strlen(secret); /* checked <= SECRET_MAX by the caller */

    memcpy(k_secret, "AWS4", 4);
    memcpy(k_secret + 4, secret, secret_len);
    EVP_MAC_CTX *ctx = hmac_new();
    bool ok = ctx && hmac(ctx, k_secret, 4 + secret_len, date, 8, k_a) &&
              hmac(ctx, k_a, sizeof k_a, region, strlen(region), k_b) &&
              hmac(ctx, k_b, sizeof k_b, service, strlen(service), k_a) &&
              hmac(ctx, k_a, sizeof k_a, TERMINATOR, strlen(TERMINATOR), k_b) &&
              hmac(ctx, k_b, sizeof k_b, sts->ptr, sts->size, sig);
    EVP_MAC_CTX_free(ctx); /* wipes the key it holds */
    OPENSSL_cleanse(k_secret, 4 + secret_len);
    OPENSSL_cleanse(k_a, sizeof k_a);
    OPENSSL_cleanse(k_b, sizeof k_b);
    if (!ok)
        return mf__error_set(MF_ERROR, "SigV4: HMAC-SHA256 failed in OpenSSL");
    mf__hex(sig, sizeof sig, sig_hex);
    return MF_OK;
}

/* ---- character classes (ASCII; never the locale's) */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 token characters: what a header name may be made of. */
static bool is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Control characters other than tab: they would split or corrupt a header. */
static bool has_ctl(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return true;
    return false;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_caseeq(const char *a, const char *b)
{
    for (; *a && lower(*a) == lower(*b); a++, b++)
        ;
    return lower(*a) == lower(*b);
}

/* ---- encoding */

int mf__sigv4_uri_append(mf_buf *out, const char *s, size_t len, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        while (run < len && (is_unreserved((unsigned char)s[run]) || (keep_slash && s[run] == '/')))
            run++;
        if (run > i) {
            int rc = mf__buf_put(out, s + i, run - i);
            if (rc)
                return rc;
            i = run;
            continue;
        }
        unsigned char c = (unsigned char)s[i++];
        char esc[3] = { '%', hex[c >> 4], hex[c & 0xf] };
        int rc = mf__buf_put(out, esc, sizeof esc);
        if (rc)
            return rc;
    }
    /* An empty input still leaves a valid (NUL-terminated) buffer. */
    return mf__buf_grow(out, out->size);
}

typedef struct qparam {
    size_t name_off, value_off; /* into the encoded buffer; NUL-terminated */
    const char *name, *value;   /* set once the buffer stops growing */
} qparam;

static int qparam_cmp(const void *a, const void *b)
{
    const qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Append the canonical query string of `query` to `out`. */
static int query_append(mf_buf *out, const mf__sigv4_pair *query, size_t count)
{
    if (count == 0)
        return mf__buf_grow(out, out->size);
    if (!query)
        return mf__error_set(MF_EINVAL, "SigV4: %zu query parameters but no array", count);
    for (size_t i = 0; i < count; i++)
        if (!query[i].name || !query[i].name[0])
            return mf__error_set(MF_EINVAL, "SigV4: query parameter #%zu has no name", i);

    /* Sorting is on the encoded forms, so encode everything first into one
     * buffer ("name\0value\0" per parameter), then sort pointers into it. */
    int rc = MF_OK;
    mf_buf enc = MF_BUF_INIT;
    qparam *q = calloc(count, sizeof *q);
    if (!q)
        return mf__error_oom();
    for (size_t i = 0; i < count && !rc; i++) {
        const char *v = query[i].value ? query[i].value : "";
        q[i].name_off = enc.size;
        rc = mf__sigv4_uri_append(&enc, query[i].name, strlen(query[i].name), false);
        if (!rc)
            rc = mf__buf_put(&enc, "", 1);
        q[i].value_off = enc.size;
        if (!rc)
            rc = mf__sigv4_uri_append(&enc, v, strlen(v), false);
        if (!rc)
            rc = mf__buf_put(&enc, "", 1);
    }
    if (!rc) {
        for (size_t i = 0; i < count; i++) {
            q[i].name = enc.ptr + q[i].name_off;
            q[i].value = enc.ptr + q[i].value_off;
        }
        qsort(q, count, sizeof *q, qparam_cmp);
        for (size_t i = 0; i < count && !rc; i++) {
            if (i)
                rc = mf__buf_put(out, "&", 1);
            if (!rc)
                rc = mf__buf_puts(out, q[i].name);
            if (!rc)
                rc = mf__buf_put(out, "=", 1);
            if (!rc)
                rc = mf__buf_puts(out, q[i].value);
        }
    }
    free(q);
    mf_buf_dispose(&enc);
    return rc;
}

int mf__sigv4_canonical_query(mf_buf *out, const mf__sigv4_pair *query, size_t count)
{
    mf__buf_clear(out);
    return query_append(out, query, count);
}

/* ---- headers */

typedef struct hdr {
    const char *name;  /* lowercase */
    const char *value; /* as given */
    size_t order;      /* input position: repeated names keep their order */
} hdr;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

/* The signer owns these; a caller's copy would be signed twice or clash. */
static const char *const reserved_headers[] = {
    "authorization", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token",
};

/* Append `v` trimmed, with each run of spaces and tabs as one space. */
static int value_append(mf_buf *out, const char *v)
{
    bool first = true;
    const char *p = v;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            return MF_OK;
        const char *end = p;
        while (*end && *end != ' ' && *end != '\t')
            end++;
        int rc = first ? MF_OK : mf__buf_put(out, " ", 1);
        if (!rc)
            rc = mf__buf_put(out, p, (size_t)(end - p));
        if (rc)
            return rc;
        first = false;
        p = end;
    }
}

static int check_headers(const mf__sigv4_pair *headers, size_t count)
{
    if (count && !headers)
        return mf__error_set(MF_EINVAL, "SigV4: %zu headers but no array", count);
    for (size_t i = 0; i < count; i++) {
        const char *name = headers[i].name;
        if (!name || !name[0])
            return mf__error_set(MF_EINVAL, "SigV4: header #%zu has no name", i);
        for (const char *p = name; *p; p++)
            if (!is_tchar((unsigned char)*p))
                return has_ctl(name)
                           ? mf__error_set(MF_EINVAL, "SigV4: header #%zu has an invalid name", i)
                           : mf__error_set(MF_EINVAL,
                                           "SigV4: header name '%s' is not an HTTP token", name);
        for (size_t r = 0; r < sizeof reserved_headers / sizeof *reserved_headers; r++)
            if (ascii_caseeq(name, reserved_headers[r]))
                return mf__error_set(MF_EINVAL,
                                     "SigV4: header '%s' is set by the signer, not the caller",
                                     name);
        if (headers[i].value && has_ctl(headers[i].value))
            return mf__error_set(MF_EINVAL,
                                 "SigV4: header '%s' has a line break or control character in "
                                 "its value", name);
    }
    return MF_OK;
}

/*
 * Append the canonical headers (one "name:value\n" per distinct name) to
 * `cr` and the signed header list ("a;b;c") to `signed_list`.
 */
static int headers_append(mf_buf *cr, mf_buf *signed_list, const mf__sigv4_request *req,
                          const mf__sigv4_result *res)
{
    size_t n = req->header_count;
    int rc = MF_OK;
    hdr *h = calloc(n + 4, sizeof *h);
    /* The lowercase copies of the caller's names, "name\0" each; offsets
     * first, pointers once the buffer has stopped growing. */
    mf_buf names = MF_BUF_INIT;
    size_t *offs = calloc(n + 1, sizeof *offs);
    if (!h || !offs) {
        rc = mf__error_oom();
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = req->headers[i].name;
        size_t len = strlen(name);
        rc = mf__buf_grow(&names, names.size + len + 1);
        if (rc)
            goto out;
        offs[i] = names.size;
        for (size_t k = 0; k < len; k++)
            names.ptr[names.size++] = lower(name[k]);
        names.ptr[names.size++] = '\0';
    }
    for (size_t i = 0; i < n; i++)
        h[i] = (hdr){ names.ptr + offs[i],
                      req->headers[i].value ? req->headers[i].value : "", i };

    h[n] = (hdr){ "host", req->host, n };
    n++;
    h[n] = (hdr){ "x-amz-date", res->amz_date, n };
    n++;
    if (res->content_sha256[0]) {
        h[n] = (hdr){ "x-amz-content-sha256", res->content_sha256, n };
        n++;
    }
    if (res->session_token) {
        h[n] = (hdr){ "x-amz-security-token", res->session_token, n };
        n++;
    }
    qsort(h, n, sizeof *h, hdr_cmp);

    for (size_t i = 0; i < n && !rc; i++) {
        if (i && strcmp(h[i].name, h[i - 1].name) == 0) {
            rc = mf__buf_put(cr, ",", 1);
        } else {
            if (i)
                rc = mf__buf_put(cr, "\n", 1);
            if (!rc)
                rc = mf__buf_printf(cr, "%s:", h[i].name);
            if (!rc)
                rc = mf__buf_printf(signed_list, "%s%s", i ? ";" : "", h[i].name);
        }
        if (!rc)
            rc = value_append(cr, h[i].value);
    }
    if (!rc)
        rc = mf__buf_put(cr, "\n", 1);
out:
    free(h);
    free(offs);
    mf_buf_dispose(&names);
    return rc;
}

/* ---- inputs */

static bool is_scope_part(const char *s)
{
    if (!s || !s[0])
        return false;
    for (const char *p = s; *p; p++)
        if (!is_unreserved((unsigned char)*p))
            return false;
    return true;
}

static bool is_method(const char *s)
{
    if (!s || !s[0])
        return false;
    for (const char *p = s; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return false;
    return true;
}

static bool is_payload_hash(const char *s)
{
    if (strcmp(s, MF__SIGV4_UNSIGNED_PAYLOAD) == 0)
        return true;
    if (strlen(s) != MF_SHA256_HEX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Messages here never quote a credential, only say which one is wrong. */
static int check_credentials(const mf__sigv4_credentials *creds)
{
    if (!creds || !creds->access_key_id || !creds->secret_access_key)
        return mf__error_set(MF_EINVAL, "SigV4: no credentials");
    const char *id = creds->access_key_id;
    if (!id[0])
        return mf__error_set(MF_EINVAL, "SigV4: the access key id is empty");
    /* It goes into the Authorization header and the credential scope. */
    for (const char *p = id; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '/' || *p == ',')
            return mf__error_set(MF_EINVAL,
                                 "SigV4: the access key id has a character other than printable "
                                 "ASCII without space, '/' and ','");
    size_t len = strlen(creds->secret_access_key);
    if (len == 0)
        return mf__error_set(MF_EINVAL, "SigV4: the secret access key is empty");
    if (len > SECRET_MAX)
        return mf__error_set(MF_EINVAL, "SigV4: the secret access key is longer than %d bytes",
                             SECRET_MAX);
    const char *token = creds->session_token;
    if (token)
        for (const char *p = token; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f)
                return mf__error_set(MF_EINVAL,
                                     "SigV4: the session token has whitespace or a control "
                                     "character");
    return MF_OK;
}

static int check_request(const mf__sigv4_request *req)
{
    if (!req)
        return mf__error_set(MF_EINVAL, "SigV4: no request");
    if (!is_method(req->method))
        return mf__error_set(MF_EINVAL, "SigV4: method '%s' is not an upper-case HTTP method",
                             req->method ? req->method : "(null)");
    if (!req->host || !req->host[0])
        return mf__error_set(MF_EINVAL, "SigV4: no host");
    for (const char *p = req->host; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return mf__error_set(MF_EINVAL, "SigV4: the host has whitespace or a control character");
    if (req->path && req->path[0] && req->path[0] != '/')
        return mf__error_set(MF_EINVAL, "SigV4: path '%s' does not start with '/'", req->path);
    if (!is_scope_part(req->region))
        return mf__error_set(MF_EINVAL, "SigV4: region '%s' is not valid (A-Z a-z 0-9 - . _ ~)",
                             req->region ? req->region : "(null)");
    if (!is_scope_part(req->service))
        return mf__error_set(MF_EINVAL, "SigV4: service '%s' is not valid (A-Z a-z 0-9 - . _ ~)",
                             req->service ? req->service : "(null)");
    if (req->payload_hash && !is_payload_hash(req->payload_hash))
        return mf__error_set(MF_EINVAL, "SigV4: payload hash is neither 64 lowercase hex digits "
                                        "nor " MF__SIGV4_UNSIGNED_PAYLOAD);
    if (req->flags & ~(uint32_t)MF__SIGV4_NO_CONTENT_SHA256)
        return mf__error_set(MF_EINVAL, "SigV4: unknown flags 0x%x",
                             (unsigned)(req->flags & ~(uint32_t)MF__SIGV4_NO_CONTENT_SHA256));
    return check_headers(req->headers, req->header_count);
}

static int format_time(int64_t t, char out[17])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t < 0 || t > TIME_MAX || (int64_t)tt != t || !gmtime_r(&tt, &tm) ||
        strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return mf__error_set(MF_EINVAL, "SigV4: time %lld is out of range (1970 to 9999)",
                             (long long)t);
    return MF_OK;
}

/* ---- signing */

int mf__sigv4_sign(mf__sigv4_result *out, const mf__sigv4_request *req,
                   const mf__sigv4_credentials *creds)
{
    if (!out)
        return mf__error_set(MF_EINVAL, "SigV4: no result");
    int rc = check_request(req);
    if (!rc)
        rc = check_credentials(creds);
    if (rc)
        return rc;

    mf__buf_clear(&out->authorization);
    mf__buf_clear(&out->canonical_request);
    mf__buf_clear(&out->string_to_sign);
    out->signature[0] = '\0';
    out->content_sha256[0] = '\0';
    out->session_token = creds->session_token && creds->session_token[0] ? creds->session_token
                                                                          : NULL;
    rc = format_time(req->time, out->amz_date);
    if (rc)
        return rc;
    const char *payload = req->payload_hash ? req->payload_hash : EMPTY_SHA256;
    if (!(req->flags & MF__SIGV4_NO_CONTENT_SHA256))
        memcpy(out->content_sha256, payload, strlen(payload) + 1);
    char date[9];
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';

    /* The Authorization value is built up to the signed header list now,
     * since the canonical request needs that list too. */
    mf_buf *auth = &out->authorization, *cr = &out->canonical_request;
    rc = mf__buf_printf(auth, ALGORITHM " Credential=%s/%s/%s/%s/" TERMINATOR ", SignedHeaders=",
                        creds->access_key_id, date, req->region, req->service);
    size_t signed_at = auth->size;

    if (!rc)
        rc = mf__buf_printf(cr, "%s\n", req->method);
    if (!rc) {
        const char *path = req->path && req->path[0] ? req->path : "/";
        rc = mf__sigv4_uri_append(cr, path, strlen(path), true);
    }
    if (!rc)
        rc = mf__buf_put(cr, "\n", 1);
    if (!rc)
        rc = query_append(cr, req->query, req->query_count);
    if (!rc)
        rc = mf__buf_put(cr, "\n", 1);
    if (!rc)
        rc = headers_append(cr, auth, req, out);
    if (!rc)
        rc = mf__buf_put(cr, "\n", 1);
    if (!rc)
        rc = mf__buf_put(cr, auth->ptr + signed_at, auth->size - signed_at);
    if (!rc)
        rc = mf__buf_printf(cr, "\n%s", payload);

    uint8_t digest[MF_SHA256_LEN];
    char digest_hex[MF_SHA256_HEX + 1];
    if (!rc)
        rc = mf__sha256(cr->ptr, cr->size, digest);
    if (!rc) {
        mf__hex(digest, sizeof digest, digest_hex);
        rc = mf__buf_printf(&out->string_to_sign, ALGORITHM "\n%s\n%s/%s/%s/" TERMINATOR "\n%s",
                            out->amz_date, date, req->region, req->service, digest_hex);
    }
    if (!rc)
        rc = sign_string(out->signature, creds->secret_access_key, date, req->region,
                         req->service, &out->string_to_sign);
    if (!rc)
        rc = mf__buf_printf(auth, ", Signature=%s", out->signature);
    return rc;
}

size_t mf__sigv4_result_headers(const mf__sigv4_result *r,
                                mf__sigv4_pair out[MF__SIGV4_HEADERS_MAX])
{
    size_t n = 0;
    out[n++] = (mf__sigv4_pair){ "X-Amz-Date", r->amz_date };
    if (r->content_sha256[0])
        out[n++] = (mf__sigv4_pair){ "X-Amz-Content-SHA256", r->content_sha256 };
    if (r->session_token)
        out[n++] = (mf__sigv4_pair){ "X-Amz-Security-Token", r->session_token };
    out[n++] = (mf__sigv4_pair){ "Authorization",
                                 r->authorization.ptr ? r->authorization.ptr : "" };
    return n;
}

void mf__sigv4_result_dispose(mf__sigv4_result *r)
{
    if (!r)
        return;
    if (r->canonical_request.reserved)
        OPENSSL_cleanse(r->canonical_request.ptr, r->canonical_request.reserved);
    mf_buf_dispose(&r->authorization);
    mf_buf_dispose(&r->canonical_request);
    mf_buf_dispose(&r->string_to_sign);
    *r = (mf__sigv4_result)MF__SIGV4_RESULT_INIT;
}
