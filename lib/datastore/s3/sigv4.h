/*
 * Internal: AWS Signature Version 4, header form ("Authorization:
 * AWS4-HMAC-SHA256 ..."), for the S3 datastore. Nothing here is exported.
 *
 * S3 rules throughout: the path is percent-encoded once (never twice) and
 * never normalised ('.', '..' and "//" are part of the key), so what is
 * signed is exactly the path the request sends. Build the request URL with
 * mf__sigv4_uri_append() and mf__sigv4_canonical_query() and it will match.
 *
 * Threading: every function is reentrant and may be called from any thread;
 * the only shared state is the OpenSSL HMAC implementation, fetched once per
 * process. Results are owned by the caller, one thread at a time.
 *
 * Secrets: the secret access key is only ever copied into the signing-key
 * derivation, whose buffers are wiped (OPENSSL_cleanse) before returning.
 * No error message contains the access key id, the secret or the session
 * token.
 */
#ifndef MF_DATASTORE_S3_SIGV4_H
#define MF_DATASTORE_S3_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* A name/value pair: a query parameter or a header. Neither is encoded. */
typedef struct mf__sigv4_pair {
    const char *name;
    const char *value; /* NULL means "" */
} mf__sigv4_pair;

typedef struct mf__sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" for long-term credentials */
} mf__sigv4_credentials;

/* Leave out x-amz-content-sha256 (neither sent nor signed). S3 requires
 * the header; other services and the generic AWS test suite do not use it. */
#define MF__SIGV4_NO_CONTENT_SHA256 0x1u

/* The payload hash that tells S3 the body is not signed. */
#define MF__SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

typedef struct mf__sigv4_request {
    const char *method;  /* upper case: "GET", "PUT", ... */
    const char *host;    /* the Host header: "bucket.s3.us-east-1.amazonaws.com[:port]" */
    /* The decoded path, starting with '/' ("/bucket/a b+c.txt"); NULL or ""
     * means "/". Every byte but A-Z a-z 0-9 - . _ ~ and '/' is encoded. */
    const char *path;
    /* Query parameters, decoded, in any order; a NULL value signs as
     * "name=" (S3 sub-resources such as "uploads"). */
    const mf__sigv4_pair *query;
    size_t query_count;
    /* Headers to sign besides the ones the signer adds (host, x-amz-date,
     * x-amz-content-sha256, x-amz-security-token), which must not appear
     * here. Names are case-insensitive; a repeated name signs as one
     * header whose values are joined with ',' in the order given. Values
     * are trimmed and runs of spaces/tabs collapsed for signing; they may
     * not contain CR, LF or other control characters. Pass only headers
     * that reach the server unchanged (not User-Agent behind a proxy, not
     * Expect, Connection or Transfer-Encoding). */
    const mf__sigv4_pair *headers;
    size_t header_count;
    /* Lowercase hex SHA-256 of the body (64 chars), or
     * MF__SIGV4_UNSIGNED_PAYLOAD; NULL means the hash of an empty body. */
    const char *payload_hash;
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3" */
    int64_t time;        /* signing time, seconds since the epoch (UTC) */
    uint32_t flags;      /* MF__SIGV4_* */
} mf__sigv4_request;

/* What signing produces. Initialise with MF__SIGV4_RESULT_INIT, release
 * with mf__sigv4_result_dispose(); a result can be reused for the next
 * signature (its contents are replaced). */
typedef struct mf__sigv4_result {
    char amz_date[17];         /* x-amz-date: "YYYYMMDDTHHMMSSZ" */
    char content_sha256[65];   /* x-amz-content-sha256; "" with MF__SIGV4_NO_CONTENT_SHA256 */
    char signature[65];        /* lowercase hex */
    /* x-amz-security-token: borrowed from the credentials (valid as long
     * as they are); NULL when there is none. */
    const char *session_token;
    mf_buf authorization;      /* the Authorization header value */
    /* For tests and debugging; the canonical request holds the session
     * token, and is wiped by dispose. */
    mf_buf canonical_request;
    mf_buf string_to_sign;
} mf__sigv4_result;

#define MF__SIGV4_RESULT_INIT { "", "", "", NULL, MF_BUF_INIT, MF_BUF_INIT, MF_BUF_INIT }

/* The most headers mf__sigv4_result_headers() returns. */
#define MF__SIGV4_HEADERS_MAX 4

/*
 * Sign `req` with `creds`. On success `out` holds the values of the
 * headers to add to the request (see mf__sigv4_result_headers()).
 *
 * Returns MF_OK; MF_EINVAL when an input cannot be signed (the message
 * names the input - a header or parameter by name, never a credential);
 * MF_ENOMEM; MF_ERROR when OpenSSL fails. On failure `out` holds nothing
 * useful but must still be disposed.
 */
int mf__sigv4_sign(mf__sigv4_result *out, const mf__sigv4_request *req,
                   const mf__sigv4_credentials *creds);

/*
 * The headers to add to the signed request, in this order: X-Amz-Date,
 * X-Amz-Content-SHA256 (unless MF__SIGV4_NO_CONTENT_SHA256),
 * X-Amz-Security-Token (when there is one), Authorization. Fills `out`
 * with pointers into `r` (and the credentials, for the token), valid until
 * `r` is signed again or disposed; returns how many.
 */
size_t mf__sigv4_result_headers(const mf__sigv4_result *r,
                                mf__sigv4_pair out[MF__SIGV4_HEADERS_MAX]);

/* Wipe and free what `r` holds; `r` is then MF__SIGV4_RESULT_INIT. Accepts
 * NULL and an already disposed result. */
void mf__sigv4_result_dispose(mf__sigv4_result *r);

/*
 * Append `s[0..len)` percent-encoded the SigV4 way: A-Z a-z 0-9 - . _ ~ as
 * they are, every other byte as %XX (upper-case hex); '/' is kept when
 * `keep_slash` (object key paths) and encoded otherwise (query names and
 * values). MF_OK or MF_ENOMEM.
 */
int mf__sigv4_uri_append(mf_buf *out, const char *s, size_t len, bool keep_slash);

/*
 * Replace the contents of `out` with the canonical query string of
 * `query`: every name and value encoded, pairs sorted by encoded name then
 * encoded value, "name=value" joined with '&' ("" when `count` is 0). It is
 * also a valid query string to send. MF_OK, MF_EINVAL (a NULL or empty
 * name) or MF_ENOMEM.
 */
int mf__sigv4_canonical_query(mf_buf *out, const mf__sigv4_pair *query, size_t count);

#endif /* MF_DATASTORE_S3_SIGV4_H */
