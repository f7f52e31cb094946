/* The AWS credential sources that need the network (see creds.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <expat.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "creds.h"
#include "sigv4.h"

extern char **environ;

#define BODY_MAX MF__S3CREDS_BODY_MAX
/* botocore's STS client waits 60 s to connect and 60 s per read; one
 * credential fetch should not hold a datastore open for minutes. */
#define STS_CONNECT_MS 10000L
#define STS_TIMEOUT_MS 30000L
#define STS_ATTEMPTS 3
/* botocore's ContainerMetadataFetcher */
#define CONTAINER_TIMEOUT_MS 2000L
#define CONTAINER_ATTEMPTS 3
#define CONTAINER_SLEEP_MS 1000L
#define IMDS_TOKEN_TTL "21600"
/* The text kept of an STS XML element: session tokens run to a few KiB. */
#define XML_FIELD_MAX (16u * 1024u)
#define XML_DEPTH_MAX 16
/* The most of a server's or a process's own words a message quotes. */
#define QUOTE_MAX 300
#define USER_AGENT "libmetaflow/" MF_VERSION_STRING

/* ---- secrets and messages */

static void buf_wipe(mf_buf *b)
{
    if (b->ptr && b->reserved)
        OPENSSL_cleanse(b->ptr, b->reserved);
    mf_buf_dispose(b);
}

typedef mf__s3creds creds;

static void creds_wipe(creds *c)
{
    mf__secret_free(c->id);
    mf__secret_free(c->secret);
    mf__secret_free(c->token);
    memset(c, 0, sizeof *c);
}


/* s[0..n) for a message: at most QUOTE_MAX bytes, control characters as
 * spaces, surrounding whitespace dropped, "..." when cut. */
static void quote(char *dst, size_t cap, const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    size_t max = cap - 4 < QUOTE_MAX ? cap - 4 : QUOTE_MAX, i;
    for (i = 0; i < n && i < max; i++)
        dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    if (i < n)
        memcpy(dst + i, "...", 3), i += 3;
    dst[i] = '\0';
}

/* `url` for a message: without user info ("user:pass@"), query or fragment. */
static void url_shown(char *dst, size_t cap, const char *url)
{
    const char *p = strstr(url, "://");
    size_t scheme = p ? (size_t)(p + 3 - url) : 0;
    const char *h = url + scheme, *auth_end = h + strcspn(h, "/?#");
    for (const char *q = h; q < auth_end; q++)
        if (*q == '@')
            h = q + 1;
    size_t rest = strcspn(h, "?#");
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%.*s%.*s", (int)scheme, url, (int)rest, h);
    quote(dst, cap, tmp, strlen(tmp));
}

static const char *errno_text(int err, char *buf, size_t cap)
{
    /* the GNU strerror_r (_GNU_SOURCE), thread-safe unlike strerror */
    return strerror_r(err, buf, cap);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Bytes 0x21..0x7e only: these go into HTTP headers as they are. */
static bool printable(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* Fill `out` from the strings of a response; `why` says what is wrong
 * (never quoting a key, secret or token) when MF_EINVAL. */
static int creds_set(creds *out, const char *what, const char *id, const char *secret,
                     const char *token, const char *token_name, const char *exp, bool need_exp,
                     char *why, size_t cap)
{
    const char *missing = !id                    ? "AccessKeyId"
                          : !secret              ? "SecretAccessKey"
                          : token_name && !token ? token_name
                          : need_exp && !exp     ? "Expiration"
                                                 : NULL;
    if (missing) {
        snprintf(why, cap, "the %s has no %s", what, missing);
        return MF_EINVAL;
    }
    const char *bad = !printable(id)               ? "AccessKeyId"
                      : !printable(secret)         ? "SecretAccessKey"
                      : token && !printable(token) ? (token_name ? token_name : "SessionToken")
                                                   : NULL;
    if (bad) {
        snprintf(why, cap, "the %s's %s is empty or not printable ASCII", what, bad);
        return MF_EINVAL;
    }
    int64_t t = 0;
    if (exp && mf__s3cfg_parse_time(exp, &t) != MF_OK) {
        char q[QUOTE_MAX + 4];
        quote(q, sizeof q, exp, strlen(exp));
        snprintf(why, cap, "the %s's Expiration '%s' is not an ISO 8601 time", what, q);
        return MF_EINVAL;
    }
    out->id = mf__secret_dup(id, strlen(id));
    out->secret = mf__secret_dup(secret, strlen(secret));
    out->token = token ? mf__secret_dup(token, strlen(token)) : NULL;
    out->expiration = t;
    if (!out->id || !out->secret || (token && !out->token)) {
        creds_wipe(out);
        return mf__error_oom();
    }
    return MF_OK;
}

/* Read a small file that holds a secret into `out` (sized once, so never
 * reallocated: nothing of it is left behind unwiped), trimmed. `what`
 * names it in messages: "web-identity: token file". */
static int read_secret_file(mf_buf *out, const char *path, const char *what)
{
    char eb[128];
    int rc = mf__buf_grow(out, BODY_MAX + 1);
    if (rc != MF_OK)
        return rc;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return mf__error_set(MF_EIO, "%s '%s' cannot be read: %s", what, path,
                             errno_text(err, eb, sizeof eb));
    }
    for (;;) {
        ssize_t n = read(fd, out->ptr + out->size, BODY_MAX + 1 - out->size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            close(fd);
            return mf__error_set(MF_EIO, "%s '%s' cannot be read: %s", what, path,
                                 errno_text(err, eb, sizeof eb));
        }
        out->size += (size_t)n;
        if (n == 0 || out->size > BODY_MAX)
            break;
    }
    close(fd);
    if (out->size > BODY_MAX)
        return mf__error_set(MF_EINVAL, "%s '%s' is larger than %u bytes", what, path, BODY_MAX);
    if (memchr(out->ptr, '\0', out->size))
        return mf__error_set(MF_EINVAL, "%s '%s' holds a NUL byte", what, path);
    size_t start = 0, end = out->size;
    while (start < end && isspace((unsigned char)out->ptr[start]))
        start++;
    while (end > start && isspace((unsigned char)out->ptr[end - 1]))
        end--;
    memmove(out->ptr, out->ptr + start, end - start);
    OPENSSL_cleanse(out->ptr + (end - start), out->size - (end - start));
    out->size = end - start;
    out->ptr[out->size] = '\0';
    if (!out->size)
        return mf__error_set(MF_EINVAL, "%s '%s' is empty", what, path);
    return MF_OK;
}

/* ---- HTTP (libcurl's easy interface: one request per handle) */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int mf__s3_curl_ready(void)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return mf__error_set(MF_EIO, "cannot initialise libcurl: %s",
                             curl_easy_strerror(curl_init_rc));
    return MF_OK;
}

typedef struct http {
    /* the request */
    const char *method; /* "GET", "PUT" or "POST" */
    const char *url;
    struct curl_slist *headers; /* wiped and freed by http_dispose */
    const char *body;           /* PUT and POST; NULL: empty */
    size_t body_len;
    long connect_ms, timeout_ms;
    const char *ca_bundle;
    bool no_proxy; /* ignore the proxy variables */
    /* the outcome of the last http_run */
    long status;    /* 0: no response; see `why` */
    bool connected; /* the connection was made before the failure */
    bool transient; /* a failure worth another attempt (connection, timeout) */
    mf_buf resp;    /* the body; wiped by http_dispose */
    bool too_big;
    char why[CURL_ERROR_SIZE + 64];
} http;

void mf__s3_slist_wipe_free(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        if (p->data)
            OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* Wipe and free the request's headers (they may hold secrets). */
static void http_clear_headers(http *h)
{
    mf__s3_slist_wipe_free(h->headers);
    h->headers = NULL;
}

static void http_dispose(http *h)
{
    http_clear_headers(h);
    buf_wipe(&h->resp);
}

/* Add "name: value" (value may be a secret: the line is wiped; curl's copy
 * is wiped by http_dispose). "name:" alone removes a header curl adds. */
static int http_header(http *h, const char *name, const char *value)
{
    mf_buf line = MF_BUF_INIT;
    int rc =
        value ? mf__buf_printf(&line, "%s: %s", name, value) : mf__buf_printf(&line, "%s:", name);
    if (rc == MF_OK) {
        struct curl_slist *l = curl_slist_append(h->headers, line.ptr);
        if (l)
            h->headers = l;
        else
            rc = mf__error_oom();
    }
    buf_wipe(&line);
    return rc;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    http *h = ud;
    size_t len = size * n;
    if (len > BODY_MAX - h->resp.size) {
        h->too_big = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    memcpy(h->resp.ptr + h->resp.size, p, len);
    h->resp.size += len;
    h->resp.ptr[h->resp.size] = '\0';
    return len;
}

/* One request. MF_OK when a response came (any status); MF_EIO when none
 * did, `why` saying why (no error state is set: the caller names the
 * source); MF_ENOMEM. */
static int http_run(http *h)
{
    h->status = 0;
    h->connected = h->too_big = h->transient = false;
    h->why[0] = '\0';
    /* Sized once so that a response is never reallocated (left unwiped). */
    int rc = mf__buf_grow(&h->resp, BODY_MAX);
    if (rc != MF_OK)
        return rc;
    h->resp.size = 0;
    h->resp.ptr[0] = '\0';

    CURL *e = curl_easy_init();
    if (!e)
        return mf__error_oom();
    char err[CURL_ERROR_SIZE];
    err[0] = '\0';
    CURLcode cc;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((cc = curl_easy_setopt(e, opt, val)) != CURLE_OK)                                      \
            goto done;                                                                             \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, err);
    SET(CURLOPT_URL, h->url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_bundle)
        SET(CURLOPT_CAINFO, h->ca_bundle);
    SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
    SET(CURLOPT_TIMEOUT_MS, h->timeout_ms);
    SET(CURLOPT_USERAGENT, USER_AGENT);
    if (h->no_proxy)
        SET(CURLOPT_NOPROXY, "*");
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, h);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)BODY_MAX);
    if (strcmp(h->method, "GET") != 0) {
        /* POSTFIELDS is not copied: the body (a secret) stays ours to wipe. */
        SET(CURLOPT_POSTFIELDS, h->body ? h->body : "");
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body_len);
        if (strcmp(h->method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, h->method);
    }
    SET(CURLOPT_HTTPHEADER, h->headers);
#undef SET
    cc = curl_easy_perform(e);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h->status);
    } else {
        curl_off_t connect_us = 0;
        curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect_us);
        h->connected = connect_us > 0;
    }
done:
    curl_easy_cleanup(e);
    if (cc == CURLE_OK)
        return MF_OK;
    if (cc == CURLE_OUT_OF_MEMORY)
        return mf__error_oom();
    h->transient = cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT ||
                   cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_SEND_ERROR ||
                   cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE;
    if (h->too_big || cc == CURLE_FILESIZE_EXCEEDED)
        snprintf(h->why, sizeof h->why, "the response is larger than %u bytes", BODY_MAX);
    else
        snprintf(h->why, sizeof h->why, "%s", err[0] ? err : curl_easy_strerror(cc));
    h->why[strcspn(h->why, "\r\n")] = '\0';
    return MF_EIO;
}

/* A request to an AWS credentials service (STS, the SSO portal,
 * SSO-OIDC): STS's timeouts and the configuration's CA file. */
static void http_aws(http *h, const mf__s3cfg *cfg, const char *method, const char *url,
                     const char *body, size_t body_len)
{
    h->method = method;
    h->url = url;
    h->body = body;
    h->body_len = body_len;
    h->connect_ms = STS_CONNECT_MS;
    h->timeout_ms = STS_TIMEOUT_MS;
    h->ca_bundle = cfg->ca_bundle;
}

/* ---- JSON (jansson) */

/* Wipe every string in `j` (jansson's own copies of keys and secrets). */
static void json_wipe(json_t *j)
{
    if (json_is_string(j)) {
        OPENSSL_cleanse((char *)json_string_value(j), json_string_length(j));
    } else if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach (j, k, v)
            json_wipe(v);
        (void)k;
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach (j, i, v)
            json_wipe(v);
    }
}

static void json_free(json_t *j)
{
    if (j) {
        json_wipe(j);
        json_decref(j);
    }
}

/* A JSON object from `body`, or MF_EINVAL with `why`. jansson's own error
 * text is not used: it quotes the input near the fault, which could be a
 * secret. */
static int json_object_from(json_t **out, const char *what, const mf_buf *body, char *why,
                            size_t cap)
{
    json_error_t je;
    *out = NULL;
    json_t *j = json_loadb(body->ptr ? body->ptr : "", body->size, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        snprintf(why, cap, "the %s is not valid JSON (line %d, column %d)", what, je.line,
                 je.column);
        return MF_EINVAL;
    }
    if (!json_is_object(j)) {
        json_free(j);
        snprintf(why, cap, "the %s is not a JSON object", what);
        return MF_EINVAL;
    }
    *out = j;
    return MF_OK;
}

/* A string member, NULL when absent or not a string. */
static const char *json_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int creds_from_json(creds *out, const char *what, json_t *o, const char *token_name,
                           bool need_exp, char *why, size_t cap)
{
    return creds_set(out, what, json_str(o, "AccessKeyId"), json_str(o, "SecretAccessKey"),
                     json_str(o, token_name ? token_name : "SessionToken"), token_name,
                     json_str(o, "Expiration"), need_exp, why, cap);
}

/* ---- STS's XML (expat): <Action>Response or ErrorResponse */

enum sts_field { F_ID, F_SECRET, F_TOKEN, F_EXPIRATION, F_CODE, F_MESSAGE, F_COUNT };

enum sts_kind { K_OTHER, K_RESPONSE, K_ERROR_RESPONSE, K_RESULT, K_CREDENTIALS, K_ERROR, K_LEAF };

typedef struct sts_doc {
    XML_Parser xp;
    unsigned depth;
    uint8_t kind[XML_DEPTH_MAX + 1]; /* kind[d]: the open element at depth d (1 = root) */
    int field;                       /* the leaf whose text is read, or -1 */
    mf_buf text[F_COUNT];            /* wiped */
    bool seen[F_COUNT];
    const char *action; /* "AssumeRole...": the root <action>Response */
    bool is_error; /* the root is <ErrorResponse> or <Error> */
    char fault[QUOTE_MAX + 128];
} sts_doc;

static void sts_fail(sts_doc *d, const char *fmt, ...) MF__PRINTF(2, 3);
static void sts_fail(sts_doc *d, const char *fmt, ...)
{
    if (d->fault[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->fault, sizeof d->fault, fmt, ap);
    va_end(ap);
    XML_StopParser(d->xp, XML_FALSE);
}

/* True when `n` is `action` followed by `suffix`. */
static bool sts_named(const char *n, const char *action, const char *suffix)
{
    size_t a = strlen(action);
    return strncmp(n, action, a) == 0 && strcmp(n + a, suffix) == 0;
}

static const char *local_name(const XML_Char *name)
{
    const char *sp = strrchr(name, ' '); /* "namespace-uri local" */
    return sp ? sp + 1 : name;
}

static void XMLCALL sts_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    sts_doc *d = ud;
    const char *n = local_name(name);
    (void)atts;
    if (d->fault[0])
        return;
    if (d->depth == XML_DEPTH_MAX) {
        sts_fail(d, "elements nest more than %d deep", XML_DEPTH_MAX);
        return;
    }
    enum sts_kind parent = d->depth ? (enum sts_kind)d->kind[d->depth] : K_OTHER, k = K_OTHER;
    int field = -1;
    if (d->depth == 0) {
        if (sts_named(n, d->action, "Response")) {
            k = K_RESPONSE;
        } else if (strcmp(n, "ErrorResponse") == 0) {
            k = K_ERROR_RESPONSE;
        } else if (strcmp(n, "Error") == 0) {
            k = K_ERROR;
        } else {
            char q[QUOTE_MAX + 4];
            quote(q, sizeof q, n, strlen(n));
            sts_fail(d, "unexpected root element <%s>", q);
            return;
        }
        d->is_error = k != K_RESPONSE;
    } else if (parent == K_RESPONSE && sts_named(n, d->action, "Result")) {
        k = K_RESULT;
    } else if (parent == K_RESULT && strcmp(n, "Credentials") == 0) {
        k = K_CREDENTIALS;
    } else if (parent == K_ERROR_RESPONSE && strcmp(n, "Error") == 0) {
        k = K_ERROR;
    } else if (parent == K_CREDENTIALS) {
        field = strcmp(n, "AccessKeyId") == 0       ? F_ID
                : strcmp(n, "SecretAccessKey") == 0 ? F_SECRET
                : strcmp(n, "SessionToken") == 0    ? F_TOKEN
                : strcmp(n, "Expiration") == 0      ? F_EXPIRATION
                                                    : -1;
    } else if (parent == K_ERROR) {
        field = strcmp(n, "Code") == 0 ? F_CODE : strcmp(n, "Message") == 0 ? F_MESSAGE : -1;
    }
    if (field >= 0) {
        k = K_LEAF;
        d->text[field].size = 0; /* a repeated element: the last one counts */
        d->seen[field] = true;
    }
    d->field = field;
    d->kind[++d->depth] = (uint8_t)k;
}

static void XMLCALL sts_text(void *ud, const XML_Char *s, int len)
{
    sts_doc *d = ud;
    if (d->fault[0] || d->field < 0)
        return;
    mf_buf *b = &d->text[d->field];
    if ((size_t)len > XML_FIELD_MAX - b->size) {
        sts_fail(d, "an element's text is longer than %u bytes", XML_FIELD_MAX);
        return;
    }
    memcpy(b->ptr + b->size, s, (size_t)len);
    b->size += (size_t)len;
    b->ptr[b->size] = '\0';
}

static void XMLCALL sts_end(void *ud, const XML_Char *name)
{
    sts_doc *d = ud;
    (void)name;
    if (d->depth)
        d->depth--;
    d->field = -1;
}

static void XMLCALL sts_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                                const XML_Char *pubid, int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    sts_fail(ud, "a DOCTYPE is not allowed");
}

/* Unreachable while DOCTYPEs are refused; kept so that no later change
 * can let an entity through unnoticed. */
static void XMLCALL sts_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                               int value_len, const XML_Char *base, const XML_Char *sysid,
                               const XML_Char *pubid, const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid;
    (void)pubid, (void)notation;
    sts_fail(ud, "an entity declaration is not allowed");
}

static void sts_dispose(sts_doc *d)
{
    if (d->xp)
        XML_ParserFree(d->xp);
    d->xp = NULL;
    for (int i = 0; i < F_COUNT; i++)
        buf_wipe(&d->text[i]);
    memset(d, 0, sizeof *d);
    d->field = -1;
}

/* A leaf's text, trimmed in place; NULL when the element was absent. */
static const char *sts_get(sts_doc *d, enum sts_field f)
{
    if (!d->seen[f])
        return NULL;
    mf_buf *b = &d->text[f];
    size_t start = 0, end = b->size;
    while (start < end && isspace((unsigned char)b->ptr[start]))
        start++;
    while (end > start && isspace((unsigned char)b->ptr[end - 1]))
        end--;
    b->ptr[end] = '\0';
    return b->ptr + start;
}

/* Parse a whole response to `action`; MF_OK, or MF_EINVAL with d->fault
 * set. */
static int sts_parse(sts_doc *d, const mf_buf *body, const char *action)
{
    int rc;
    memset(d, 0, sizeof *d);
    d->field = -1;
    d->action = action;
    for (int i = 0; i < F_COUNT; i++)
        if ((rc = mf__buf_grow(&d->text[i], XML_FIELD_MAX)) != MF_OK)
            return rc;
    d->xp = XML_ParserCreateNS(NULL, ' ');
    if (!d->xp)
        return mf__error_oom();
    XML_SetUserData(d->xp, d);
    XML_SetElementHandler(d->xp, sts_start, sts_end);
    XML_SetCharacterDataHandler(d->xp, sts_text);
    XML_SetStartDoctypeDeclHandler(d->xp, sts_doctype);
    XML_SetEntityDeclHandler(d->xp, sts_entity);
    XML_SetParamEntityParsing(d->xp, XML_PARAM_ENTITY_PARSING_NEVER);
    size_t skip = 0;
    while (skip < body->size && isspace((unsigned char)body->ptr[skip]))
        skip++;
    if (XML_Parse(d->xp, body->ptr + skip, (int)(body->size - skip), XML_TRUE) != XML_STATUS_OK &&
        !d->fault[0])
        snprintf(d->fault, sizeof d->fault, "malformed XML at line %lu, column %lu: %s",
                 (unsigned long)XML_GetCurrentLineNumber(d->xp),
                 (unsigned long)XML_GetCurrentColumnNumber(d->xp) + 1,
                 XML_ErrorString(XML_GetErrorCode(d->xp)));
    return d->fault[0] ? MF_EINVAL : MF_OK;
}

/* ---- web identity: STS AssumeRoleWithWebIdentity */

/* Append name=value, form-encoded as botocore's query serializer does
 * (SigV4's encoding: every byte but A-Z a-z 0-9 - _ . ~ as %XX). `b` has
 * room (see the callers), so a form holding a secret is never
 * reallocated and nothing here fails. */
static void form_put(mf_buf *b, const char *name, const char *value)
{
    (void)((b->size && mf__buf_puts(b, "&")) || mf__buf_puts(b, name) || mf__buf_puts(b, "=") ||
           mf__sigv4_uri_append(b, value, strlen(value), false));
}

int mf__s3creds_sts_url(const mf__s3cfg *cfg, mf_buf *out)
{
    mf__buf_clear(out);
    if (cfg->sts_endpoint_url)
        return mf__buf_puts(out, cfg->sts_endpoint_url);
    const char *r = cfg->region ? cfg->region : "us-east-1";
    return mf__buf_printf(out, "https://sts.%s.amazonaws.com%s", r,
                          strncmp(r, "cn-", 3) == 0 ? ".cn" : "");
}

static bool sts_retryable(const http *h, const char *code)
{
    return h->transient || h->status >= 500 ||
           (code && (strcmp(code, "Throttling") == 0 || strcmp(code, "ThrottlingException") == 0 ||
                     strcmp(code, "IDPCommunicationError") == 0));
}

/* The Host header for `url` (host[:port] as written, the port left out
 * when it is the scheme's default) and the path, for signing. The request
 * sends this Host itself, so what is signed is what is sent whatever curl
 * would make of the case or the port. MF_EINVAL for a URL that cannot be
 * signed as it is sent. */
static int url_parts(const char *url, mf_buf *host, mf_buf *path)
{
    const char *auth;
    bool https;
    if (strncasecmp(url, "https://", 8) == 0)
        auth = url + 8, https = true;
    else if (strncasecmp(url, "http://", 7) == 0)
        auth = url + 7, https = false;
    else
        return MF_EINVAL;
    size_t alen = strcspn(auth, "/?#");
    if (!alen || memchr(auth, '@', alen) || auth[alen] == '?' || auth[alen] == '#' ||
        strpbrk(auth + alen, "?#%"))
        return MF_EINVAL;
    if (https && alen > 4 && memcmp(auth + alen - 4, ":443", 4) == 0)
        alen -= 4;
    else if (!https && alen > 3 && memcmp(auth + alen - 3, ":80", 3) == 0)
        alen -= 3;
    mf__buf_clear(host);
    mf__buf_clear(path);
    int rc = mf__buf_put(host, auth, alen);
    if (rc == MF_OK) {
        const char *p = auth + strcspn(auth, "/");
        rc = mf__buf_puts(path, *p ? p : "/");
    }
    return rc;
}

/* Sign an STS form POST with `sign` (SigV4, service "sts", the config's
 * region) and set its headers on `h`, replacing the previous ones. */
static int sts_sign(http *h, const mf__s3cfg *cfg, const mf__sigv4_credentials *sign,
                    const char *form, size_t form_len)
{
    static const char ctype[] = "application/x-www-form-urlencoded; charset=utf-8";
    mf_buf host = MF_BUF_INIT, path = MF_BUF_INIT;
    mf__sigv4_result res = MF__SIGV4_RESULT_INIT;
    mf__sigv4_pair out[MF__SIGV4_HEADERS_MAX];
    char hash[2 * MF_SHA256_LEN + 1];
    uint8_t md[MF_SHA256_LEN];
    int rc = url_parts(h->url, &host, &path);
    if (rc == MF_EINVAL) {
        char shown[512];
        url_shown(shown, sizeof shown, h->url);
        rc = mf__error_set(MF_EINVAL,
                           "the STS endpoint '%s' cannot be signed (expected http(s)://host"
                           "[:port][/path], no query or percent sign)",
                           shown);
    }
    if (rc == MF_OK && (rc = mf__sha256(form, form_len, md)) == MF_OK) {
        mf__hex(md, MF_SHA256_LEN, hash);
        mf__sigv4_pair signed_hdr[] = { { "Content-Type", ctype } };
        mf__sigv4_request sr = {
            .method = "POST", .host = host.ptr, .path = path.ptr,
            .headers = signed_hdr, .header_count = 1, .payload_hash = hash,
            .region = cfg->region ? cfg->region : "us-east-1", .service = "sts",
            .time = (int64_t)time(NULL), .flags = MF__SIGV4_NO_CONTENT_SHA256,
        };
        rc = mf__sigv4_sign(&res, &sr, sign);
    }
    if (rc == MF_OK) {
        http_clear_headers(h);
        size_t n = mf__sigv4_result_headers(&res, out);
        rc = http_header(h, "Host", host.ptr);
        if (rc == MF_OK)
            rc = http_header(h, "Content-Type", ctype);
        for (size_t i = 0; rc == MF_OK && i < n; i++)
            rc = http_header(h, out[i].name, out[i].value);
        if (rc == MF_OK)
            rc = http_header(h, "Expect", NULL);
    }
    mf__sigv4_result_dispose(&res);
    mf_buf_dispose(&host);
    mf_buf_dispose(&path);
    return rc;
}

/* POST `form` to STS's `action` for `role` and read the credentials it
 * returns into `out`; signed with `sign` unless that is NULL. Messages
 * start with `what` (the source's name). Wipes nothing of `form`. */
static int sts_call(const mf__s3cfg *cfg, const char *what, const char *action, const char *role,
                    const mf_buf *form, const mf__sigv4_credentials *sign, creds *out)
{
    mf_buf url = MF_BUF_INIT;
    http h = { 0 };
    sts_doc d = { 0 };
    char shown[512], why[QUOTE_MAX * 2 + 256];
    int rc = mf__s3creds_sts_url(cfg, &url);
    if (rc != MF_OK)
        goto done;
    url_shown(shown, sizeof shown, url.ptr);
    http_aws(&h, cfg, "POST", url.ptr, form->ptr, form->size);
    if (!sign &&
        ((rc = http_header(&h, "Content-Type",
                           "application/x-www-form-urlencoded; charset=utf-8")) != MF_OK ||
         (rc = http_header(&h, "Expect", NULL)) != MF_OK))
        goto done;
    for (int attempt = 1;; attempt++) {
        /* Signed again for each attempt: a signature is good for minutes. */
        if (sign && (rc = sts_sign(&h, cfg, sign, form->ptr, form->size)) != MF_OK) {
            mf__error_wrap("%s: STS %s", what, action);
            goto done;
        }
        rc = http_run(&h);
        if (rc != MF_OK && rc != MF_EIO)
            goto done;
        sts_dispose(&d);
        int prc = rc == MF_OK ? sts_parse(&d, &h.resp, action) : MF_EINVAL;
        if (prc == MF_ENOMEM) {
            rc = prc;
            goto done;
        }
        const char *code = prc == MF_OK && d.is_error ? sts_get(&d, F_CODE) : NULL;
        if (attempt == STS_ATTEMPTS || !sts_retryable(&h, code))
            break;
        sleep_ms(200L << attempt);
    }
    if (rc == MF_EIO) {
        rc = mf__error_set(MF_EIO, "%s: STS %s at '%s': %s", what, action, shown, h.why);
        goto done;
    }
    if (!d.fault[0] && d.is_error) {
        const char *code = sts_get(&d, F_CODE), *msg = sts_get(&d, F_MESSAGE);
        char qc[QUOTE_MAX + 4], qm[QUOTE_MAX + 4];
        quote(qc, sizeof qc, code ? code : "(no Code)", strlen(code ? code : "(no Code)"));
        quote(qm, sizeof qm, msg ? msg : "", msg ? strlen(msg) : 0);
        rc = mf__error_set(h.status == 403 ? MF_EACCESS : MF_EIO,
                           "%s: STS %s at '%s' refused role '%s' (HTTP %ld): %s%s%s", what, action,
                           shown, role, h.status, qc, qm[0] ? ": " : "", qm);
        goto done;
    }
    if (h.status != 200) {
        rc = mf__error_set(MF_EIO, "%s: STS %s at '%s': HTTP %ld", what, action, shown, h.status);
        goto done;
    }
    if (d.fault[0]) {
        rc = mf__error_set(MF_EINVAL, "%s: STS %s at '%s': %s", what, action, shown, d.fault);
        goto done;
    }
    rc = creds_set(out, "response", sts_get(&d, F_ID), sts_get(&d, F_SECRET), sts_get(&d, F_TOKEN),
                   "SessionToken", sts_get(&d, F_EXPIRATION), true, why, sizeof why);
    if (rc == MF_EINVAL)
        rc = mf__error_set(MF_EINVAL, "%s: STS %s at '%s': %s", what, action, shown, why);
done:
    sts_dispose(&d);
    http_dispose(&h);
    mf_buf_dispose(&url);
    return rc;
}

/* Start the form of an STS `action` for cfg's role: Action, Version,
 * RoleArn and RoleSessionName (the configured one, else
 * "libmetaflow-<unix time>"), with room for `extra` more input bytes.
 * Sized once (at most 3 bytes per input byte), so a form that will hold a
 * secret is never reallocated. */
static int sts_form(mf_buf *form, const mf__s3cfg *cfg, const char *action, size_t extra)
{
    char session[128];
    if (cfg->role_session_name)
        snprintf(session, sizeof session, "%s", cfg->role_session_name);
    else
        snprintf(session, sizeof session, "libmetaflow-%lld", (long long)time(NULL));
    int rc = mf__buf_grow(form, 160 + 3 * (strlen(cfg->role_arn) + strlen(session) + extra));
    if (rc == MF_OK) {
        form_put(form, "Action", action);
        form_put(form, "Version", "2011-06-15");
        form_put(form, "RoleArn", cfg->role_arn);
        form_put(form, "RoleSessionName", session);
    }
    return rc;
}

static int fetch_web_identity(const mf__s3cfg *cfg, creds *out)
{
    if (!cfg->role_arn || !cfg->web_identity_token_file)
        return mf__error_set(MF_EINVAL, "web-identity: no %s (set %s or the profile's %s)",
                             !cfg->role_arn ? "role ARN" : "token file",
                             !cfg->role_arn ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE",
                             !cfg->role_arn ? "role_arn" : "web_identity_token_file");
    mf_buf token = MF_BUF_INIT, form = MF_BUF_INIT;
    int rc = read_secret_file(&token, cfg->web_identity_token_file, "web-identity: token file");
    if (rc != MF_OK ||
        (rc = sts_form(&form, cfg, "AssumeRoleWithWebIdentity", token.size)) != MF_OK)
        goto done;
    form_put(&form, "WebIdentityToken", token.ptr);
    buf_wipe(&token);
    rc = sts_call(cfg, "web-identity", "AssumeRoleWithWebIdentity", cfg->role_arn, &form, NULL,
                  out);
done:
    buf_wipe(&token);
    buf_wipe(&form);
    return rc;
}

/* ---- assume-role: STS AssumeRole, signed with the role source's keys */

/* Renew the role source's credentials when they are missing or expire
 * within this many seconds. */
#define ROLE_SOURCE_MARGIN_S 300

static int fetch_assume_role(mf__s3cfg *cfg, creds *out)
{
    const char *profile = cfg->profile ? cfg->profile : "default";
    mf__s3cfg *src = cfg->role_source;
    if (!cfg->role_arn || !src)
        return mf__error_set(MF_EINVAL, "assume-role: profile '%s' has no role_arn and source",
                             profile);
    if (cfg->mfa_serial)
        return mf__error_set(MF_ENOTSUP,
                             "assume-role: profile '%s' needs an MFA code (mfa_serial), which "
                             "cannot be asked for here: get temporary credentials first (such as "
                             "'aws configure export-credentials --profile %s --format process' "
                             "in a credential_process, or environment variables)",
                             profile, profile);
    int rc = MF_OK;
    int64_t now = (int64_t)time(NULL);
    if (src->pending || !src->access_key_id ||
        (mf__s3creds_refreshable(src) &&
         mf__s3creds_expiring(src, now, ROLE_SOURCE_MARGIN_S))) {
        rc = mf__s3creds_fetch(src);
        /* Keys that still work will do (the fetch left them as they were). */
        if (rc != MF_OK && !src->pending && src->access_key_id &&
            !mf__s3creds_expiring(src, now, 0)) {
            mf_error_clear();
            rc = MF_OK;
        }
        if (rc != MF_OK)
            return mf__error_wrap("assume-role: profile '%s': the credentials for role '%s'",
                                  profile, cfg->role_arn);
    }
    mf_buf form = MF_BUF_INIT;
    if ((rc = sts_form(&form, cfg, "AssumeRole",
                       cfg->external_id ? strlen(cfg->external_id) : 0)) != MF_OK)
        goto done;
    if (cfg->external_id)
        form_put(&form, "ExternalId", cfg->external_id);
    if (cfg->duration_s > 0) {
        char d[16];
        snprintf(d, sizeof d, "%d", (int)cfg->duration_s);
        form_put(&form, "DurationSeconds", d);
    }
    mf__sigv4_credentials sign = { src->access_key_id, src->secret_access_key,
                                   src->session_token };
    char what[300];
    snprintf(what, sizeof what, "assume-role (profile '%s')", profile);
    rc = sts_call(cfg, what, "AssumeRole", cfg->role_arn, &form, &sign, out);
done:
    mf_buf_dispose(&form);
    return rc;
}

/* ---- sso: IAM Identity Center (the AWS CLI's token cache, the portal's
 * GetRoleCredentials, SSO-OIDC CreateToken to refresh) */

#define SSO_REFRESH_WINDOW_S (15 * 60) /* botocore refreshes this early */
#define SSO_ATTEMPTS 3

/* Replace `key`'s string in `o`, wiping the old one first. */
static int json_set_secret(json_t *o, const char *key, const char *value)
{
    json_t *old = json_object_get(o, key);
    if (json_is_string(old))
        OPENSSL_cleanse((char *)json_string_value(old), json_string_length(old));
    json_t *v = json_string(value);
    if (!v || json_object_set_new(o, key, v) != 0)
        return mf__error_oom();
    return MF_OK;
}

/* http_run with up to SSO_ATTEMPTS attempts (connection failures, 5xx,
 * 429). */
static int sso_http(http *h)
{
    for (int attempt = 1;; attempt++) {
        int rc = http_run(h);
        if ((rc != MF_OK && rc != MF_EIO) || attempt == SSO_ATTEMPTS ||
            !(h->transient || h->status >= 500 || h->status == 429))
            return rc;
        sleep_ms(200L << attempt);
    }
}

/* `j` as JSON text in a buffer sized once (jansson's json_dumps grows
 * its own with realloc, leaving copies of the secrets behind). Wipe it
 * with buf_wipe. */
static int json_text(mf_buf *out, const json_t *j, size_t flags)
{
    size_t n = json_dumpb(j, NULL, 0, flags);
    if (n == 0)
        return mf__error_oom();
    int rc = mf__buf_grow(out, n + 1);
    if (rc != MF_OK)
        return rc;
    if (json_dumpb(j, out->ptr, n, flags) != n)
        return mf__error_oom();
    out->ptr[n] = '\0';
    out->size = n;
    return MF_OK;
}

/* The string `key` of a JSON error answer, quoted into q[0..cap) for a
 * message ("" when the body is not JSON or has none). */
static void error_field(const http *h, const char *key, char *q, size_t cap)
{
    json_t *j = NULL;
    char why[128];
    const char *v = NULL;
    if (json_object_from(&j, "response", &h->resp, why, sizeof why) == MF_OK)
        v = json_str(j, key);
    quote(q, cap, v ? v : "", v ? strlen(v) : 0);
    json_free(j);
}

/* A service URL: the configured one, else https://<host>.<region>.amazonaws.com[.cn]. */
static int service_url(mf_buf *out, const char *configured, const char *host, const char *region)
{
    mf__buf_clear(out);
    if (configured) {
        size_t n = strlen(configured);
        while (n && configured[n - 1] == '/')
            n--;
        return mf__buf_put(out, configured, n);
    }
    return mf__buf_printf(out, "https://%s.%s.amazonaws.com%s", host, region,
                          strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
}

/* Write the token cache back (botocore does the same after a refresh):
 * a new temporary file of mode 0600 next to it (mkstemp: another thread
 * or process may be refreshing the same session), then rename. MF_OK or
 * MF_EIO. */
static int sso_cache_write(const char *path, const json_t *cache)
{
    mf_buf text = MF_BUF_INIT, tmp = MF_BUF_INIT;
    char eb[128];
    int fd = -1;
    int rc = json_text(&text, cache, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (rc == MF_OK)
        rc = mf__buf_printf(&tmp, "%s.tmp-XXXXXX", path);
    if (rc == MF_OK && (fd = mkostemp(tmp.ptr, O_CLOEXEC)) < 0)
        rc = mf__error_set(MF_EIO, "sso: a temporary file for the token cache '%s' cannot be "
                           "made: %s", path, errno_text(errno, eb, sizeof eb));
    if (rc == MF_OK && fchmod(fd, 0600) != 0)
        rc = mf__error_set(MF_EIO, "sso: '%s': %s", tmp.ptr, errno_text(errno, eb, sizeof eb));
    for (size_t done = 0; rc == MF_OK && done < text.size;) {
        ssize_t n = write(fd, text.ptr + done, text.size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = mf__error_set(MF_EIO, "sso: the token cache '%s' cannot be written: %s",
                               tmp.ptr, errno_text(errno, eb, sizeof eb));
        else
            done += (size_t)n;
    }
    if (rc == MF_OK && fsync(fd) != 0)
        rc = mf__error_set(MF_EIO, "sso: the token cache '%s' cannot be written: %s", tmp.ptr,
                           errno_text(errno, eb, sizeof eb));
    if (fd >= 0 && close(fd) != 0 && rc == MF_OK)
        rc = mf__error_set(MF_EIO, "sso: the token cache '%s' cannot be written: %s", tmp.ptr,
                           errno_text(errno, eb, sizeof eb));
    if (rc == MF_OK && rename(tmp.ptr, path) != 0)
        rc = mf__error_set(MF_EIO, "sso: the token cache '%s' cannot be replaced: %s", path,
                           errno_text(errno, eb, sizeof eb));
    if (rc != MF_OK && fd >= 0)
        unlink(tmp.ptr);
    buf_wipe(&text);
    mf_buf_dispose(&tmp);
    return rc;
}

/* A new access token through SSO-OIDC CreateToken (grant refresh_token),
 * put into `cache` (accessToken, expiresAt, refreshToken when a new one
 * comes) and written back. MF_OK; otherwise `why` says why (no error state
 * is set: the caller decides whether the old token still does). */
static int sso_refresh(const mf__s3cfg *cfg, json_t *cache, int64_t now, int64_t *expires,
                       char *why, size_t cap)
{
    const char *client = json_str(cache, "clientId"), *secret = json_str(cache, "clientSecret");
    const char *refresh = json_str(cache, "refreshToken");
    const char *reg = json_str(cache, "registrationExpiresAt");
    int64_t reg_exp = 0;
    if (!client || !secret || !refresh) {
        snprintf(why, cap, "the token cache has no %s",
                 !client ? "clientId" : !secret ? "clientSecret" : "refreshToken");
        return MF_EINVAL;
    }
    if (reg && mf__s3cfg_parse_time(reg, &reg_exp) != MF_OK) {
        snprintf(why, cap, "the token cache's registrationExpiresAt is not an ISO 8601 time");
        return MF_EINVAL;
    }
    if (reg && reg_exp <= now) {
        snprintf(why, cap, "the client registration has expired");
        return MF_EINVAL;
    }
    mf_buf url = MF_BUF_INIT, text = MF_BUF_INIT;
    http h = { 0 };
    json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "grantType", "refresh_token", "clientId",
                            client, "clientSecret", secret, "refreshToken", refresh);
    json_t *resp = NULL;
    char shown[512], jwhy[256];
    int rc = req ? json_text(&text, req, JSON_COMPACT) : mf__error_oom();
    if (rc == MF_OK && (rc = service_url(&url, cfg->sso_oidc_endpoint_url, "oidc",
                                         cfg->sso_region)) == MF_OK)
        rc = mf__buf_puts(&url, "/token");
    if (rc != MF_OK)
        goto done;
    url_shown(shown, sizeof shown, url.ptr);
    http_aws(&h, cfg, "POST", url.ptr, text.ptr, text.size);
    if ((rc = http_header(&h, "Content-Type", "application/json")) != MF_OK ||
        (rc = http_header(&h, "Expect", NULL)) != MF_OK)
        goto done;
    if ((rc = sso_http(&h)) == MF_ENOMEM)
        goto done;
    if (rc == MF_EIO) {
        snprintf(why, cap, "SSO-OIDC at '%s': %s", shown, h.why);
        goto done;
    }
    if (h.status != 200) {
        /* OIDC errors are {"error": "invalid_grant", "error_description": ...} */
        char q[QUOTE_MAX + 4];
        error_field(&h, "error", q, sizeof q);
        snprintf(why, cap, "SSO-OIDC at '%s' refused to refresh the token (HTTP %ld%s%s)", shown,
                 h.status, q[0] ? ": " : "", q);
        rc = MF_EIO;
        goto done;
    }
    if ((rc = json_object_from(&resp, "response", &h.resp, jwhy, sizeof jwhy)) != MF_OK) {
        snprintf(why, cap, "SSO-OIDC at '%s': %s", shown, jwhy);
        goto done;
    }
    const char *token = json_str(resp, "accessToken");
    json_t *in = json_object_get(resp, "expiresIn");
    /* A day is far more than SSO-OIDC gives (an hour or so); more is
     * taken as a day, so that no time overflows. */
    json_int_t secs = json_is_integer(in) ? json_integer_value(in) : 0;
    if (!token || !printable(token) || secs <= 0) {
        snprintf(why, cap, "SSO-OIDC at '%s': the response has no usable %s", shown,
                 !token || !printable(token) ? "accessToken" : "expiresIn");
        rc = MF_EINVAL;
        goto done;
    }
    time_t exp = (time_t)(now + (secs < 86400 ? secs : 86400));
    struct tm tm;
    char iso[32];
    if (!gmtime_r(&exp, &tm) || !strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        snprintf(why, cap, "SSO-OIDC at '%s': the token's expiry cannot be written", shown);
        rc = MF_EINVAL;
        goto done;
    }
    const char *new_refresh = json_str(resp, "refreshToken");
    if ((rc = json_set_secret(cache, "accessToken", token)) != MF_OK ||
        (rc = json_set_secret(cache, "expiresAt", iso)) != MF_OK ||
        (new_refresh && (rc = json_set_secret(cache, "refreshToken", new_refresh)) != MF_OK))
        goto done;
    *expires = (int64_t)exp;
    /* The new token works even if the cache cannot take it. */
    if (sso_cache_write(cfg->sso_cache_file, cache) != MF_OK)
        mf_error_clear();
done:
    buf_wipe(&text);
    json_free(req);
    json_free(resp);
    http_dispose(&h);
    mf_buf_dispose(&url);
    return rc;
}

static int fetch_sso(const mf__s3cfg *cfg, creds *out)
{
    const char *profile = cfg->profile ? cfg->profile : "default";
    if (!cfg->sso_cache_file || !cfg->sso_account_id || !cfg->sso_role_name || !cfg->sso_region)
        return mf__error_set(MF_EINVAL, "sso: profile '%s' has no IAM Identity Center settings",
                             profile);
    char login[300], why[QUOTE_MAX + 600], shown[512];
    snprintf(login, sizeof login, "run 'aws sso login --profile %s'", profile);
    if (access(cfg->sso_cache_file, F_OK) != 0 && errno == ENOENT)
        return mf__error_set(MF_EACCESS,
                             "sso: profile '%s' has not logged in to IAM Identity Center (no "
                             "token cache '%s'): %s",
                             profile, cfg->sso_cache_file, login);
    mf_buf raw = MF_BUF_INIT, url = MF_BUF_INIT, q = MF_BUF_INIT;
    json_t *cache = NULL, *resp = NULL;
    http h = { 0 };
    int rc = read_secret_file(&raw, cfg->sso_cache_file, "sso: token cache");
    if (rc != MF_OK)
        goto done;
    if ((rc = json_object_from(&cache, "token cache", &raw, why, sizeof why)) != MF_OK) {
        rc = mf__error_set(rc, "sso: '%s': %s", cfg->sso_cache_file, why);
        goto done;
    }
    const char *token = json_str(cache, "accessToken"), *exp_s = json_str(cache, "expiresAt");
    int64_t exp = 0, now = (int64_t)time(NULL);
    if (!token || !printable(token) || !exp_s || mf__s3cfg_parse_time(exp_s, &exp) != MF_OK) {
        rc = mf__error_set(MF_EINVAL, "sso: the token cache '%s' has no usable %s: %s",
                           cfg->sso_cache_file,
                           !token || !printable(token) ? "accessToken" : "expiresAt", login);
        goto done;
    }
    why[0] = '\0';
    /* Only tokens of an sso-session can be refreshed (as in botocore). */
    if (cfg->sso_session && exp - now < SSO_REFRESH_WINDOW_S) {
        rc = sso_refresh(cfg, cache, now, &exp, why, sizeof why);
        if (rc == MF_ENOMEM)
            goto done;
        if (rc == MF_OK)
            token = json_str(cache, "accessToken");
        rc = MF_OK;
    }
    if (exp <= now) {
        rc = mf__error_set(MF_EACCESS, "sso: the IAM Identity Center session of profile '%s' "
                                       "has expired%s%s: %s",
                           profile, why[0] ? " and could not be refreshed: " : "", why, login);
        goto done;
    }

    /* GetRoleCredentials */
    if ((rc = service_url(&url, cfg->sso_endpoint_url, "portal.sso", cfg->sso_region)) != MF_OK ||
        (rc = mf__buf_puts(&url, "/federation/credentials?")) != MF_OK ||
        (rc = mf__buf_grow(&q, 64 + 3 * (strlen(cfg->sso_account_id) +
                                         strlen(cfg->sso_role_name)))) != MF_OK)
        goto done;
    form_put(&q, "account_id", cfg->sso_account_id);
    form_put(&q, "role_name", cfg->sso_role_name);
    if ((rc = mf__buf_put(&url, q.ptr, q.size)) != MF_OK)
        goto done;
    url_shown(shown, sizeof shown, url.ptr);
    http_aws(&h, cfg, "GET", url.ptr, NULL, 0);
    if ((rc = http_header(&h, "x-amz-sso_bearer_token", token)) != MF_OK)
        goto done;
    if ((rc = sso_http(&h)) == MF_ENOMEM)
        goto done;
    if (rc == MF_EIO) {
        rc = mf__error_set(MF_EIO, "sso: IAM Identity Center at '%s': %s", shown, h.why);
        goto done;
    }
    if (h.status != 200) {
        char qm[QUOTE_MAX + 4];
        error_field(&h, "message", qm, sizeof qm);
        if (h.status == 401)
            rc = mf__error_set(MF_EACCESS,
                               "sso: IAM Identity Center at '%s' refused the token of profile "
                               "'%s' (HTTP 401%s%s): %s",
                               shown, profile, qm[0] ? ": " : "", qm, login);
        else
            rc = mf__error_set(h.status == 403 ? MF_EACCESS : MF_EIO,
                               "sso: IAM Identity Center at '%s' refused role '%s' of account "
                               "'%s' (HTTP %ld%s%s)",
                               shown, cfg->sso_role_name, cfg->sso_account_id, h.status,
                               qm[0] ? ": " : "", qm);
        goto done;
    }
    json_t *rcreds = NULL;
    if ((rc = json_object_from(&resp, "response", &h.resp, why, sizeof why)) == MF_OK) {
        rcreds = json_object_get(resp, "roleCredentials");
        json_t *e = json_object_get(rcreds, "expiration");
        if (!json_is_object(rcreds) || !json_is_integer(e) || json_integer_value(e) <= 0) {
            snprintf(why, sizeof why, "the response has no %s",
                     !json_is_object(rcreds) ? "roleCredentials" : "usable expiration");
            rc = MF_EINVAL;
        } else {
            rc = creds_set(out, "response", json_str(rcreds, "accessKeyId"),
                           json_str(rcreds, "secretAccessKey"), json_str(rcreds, "sessionToken"),
                           "sessionToken", NULL, false, why, sizeof why);
            out->expiration = (int64_t)(json_integer_value(e) / 1000);
        }
    }
    if (rc == MF_EINVAL)
        rc = mf__error_set(MF_EINVAL, "sso: IAM Identity Center at '%s': %s", shown, why);
done:
    json_free(cache);
    json_free(resp);
    http_dispose(&h);
    buf_wipe(&raw);
    mf_buf_dispose(&url);
    mf_buf_dispose(&q);
    return rc;
}

/* ---- container credentials (ECS, EKS Pod Identity) */

/* The host of an http(s) URL, lower case, IPv6 brackets dropped. */
static bool url_host(const char *url, char *host, size_t cap, bool *https)
{
    const char *p;
    if (strncasecmp(url, "http://", 7) == 0)
        p = url + 7, *https = false;
    else if (strncasecmp(url, "https://", 8) == 0)
        p = url + 8, *https = true;
    else
        return false;
    for (const char *q = url; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return false;
    const char *end = p + strcspn(p, "/?#"), *h = p;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            h = q + 1;
    size_t n;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close)
            return false;
        h++;
        n = (size_t)(close - h);
    } else {
        n = strcspn(h, ":/?#");
    }
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        host[i] = (char)tolower((unsigned char)h[i]);
    host[n] = '\0';
    return true;
}

/* botocore's rule for plain http: a loopback address, or one of the hosts
 * ECS and EKS serve credentials from. */
static bool container_host_ok(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6, eks6;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        uint32_t a = ntohl(a4.s_addr);
        return (a >> 24) == 127 || a == 0xA9FEAA02u /* 169.254.170.2 */ ||
               a == 0xA9FEAA17u /* 169.254.170.23 */;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        inet_pton(AF_INET6, "fd00:ec2::23", &eks6);
        return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0 || memcmp(&a6, &eks6, sizeof a6) == 0;
    }
    return strcmp(host, "localhost") == 0;
}

static int fetch_container(const mf__s3cfg *cfg, creds *out)
{
    const char *url = cfg->container_url;
    char host[256], shown[512], why[QUOTE_MAX + 256];
    bool https;
    if (!url)
        return mf__error_set(MF_EINVAL, "container: neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
                                        "nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set");
    url_shown(shown, sizeof shown, url);
    if (!url_host(url, host, sizeof host, &https))
        return mf__error_set(MF_EINVAL, "container: '%s' is not an http(s) URL", shown);
    if (!https && !container_host_ok(host))
        return mf__error_set(MF_EINVAL,
                             "container: '%s' is plain http to host '%s', which is not allowed: "
                             "without https only a loopback address, localhost, 169.254.170.2, "
                             "169.254.170.23 or fd00:ec2::23 may serve credentials",
                             shown, host);

    mf_buf tok = MF_BUF_INIT;
    http h = { 0 };
    json_t *j = NULL;
    int rc = MF_OK;
    const char *token = cfg->container_token;
    if (cfg->container_token_file) {
        rc = read_secret_file(&tok, cfg->container_token_file,
                              "container: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        if (rc != MF_OK)
            goto done;
        token = tok.ptr;
    }
    if (token && strpbrk(token, "\r\n")) {
        rc = mf__error_set(MF_EINVAL,
                           "container: the authorization token (%s%s%s) holds a line break",
                           cfg->container_token_file ? "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '"
                                                     : "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                           cfg->container_token_file ? cfg->container_token_file : "",
                           cfg->container_token_file ? "'" : "");
        goto done;
    }
    if (token && (rc = http_header(&h, "Authorization", token)) != MF_OK)
        goto done;
    buf_wipe(&tok);

    h.method = "GET";
    h.url = url;
    h.connect_ms = h.timeout_ms = CONTAINER_TIMEOUT_MS;
    h.ca_bundle = cfg->ca_bundle;
    /* botocore's container fetcher uses no proxy (its IMDS and STS clients
     * take them from the environment, as libcurl does). */
    h.no_proxy = true;
    int attempt;
    for (attempt = 1;; attempt++) {
        rc = http_run(&h);
        if (rc != MF_OK && rc != MF_EIO)
            goto done;
        bool retry = h.transient || h.status >= 500 || h.status == 429;
        if (!retry || attempt == CONTAINER_ATTEMPTS)
            break;
        sleep_ms(CONTAINER_SLEEP_MS);
    }
    char tries[32] = "";
    if (attempt > 1)
        snprintf(tries, sizeof tries, " (%d attempts)", attempt);
    if (rc == MF_EIO) {
        rc = mf__error_set(MF_EIO, "container: credentials from '%s': %s%s", shown, h.why, tries);
        goto done;
    }
    /* The body of a refusal is not quoted: a proxy could echo the token. */
    if (h.status != 200) {
        rc = mf__error_set(
            MF_EIO, "container: credentials from '%s': HTTP %ld%s%s", shown, h.status, tries,
            h.status == 401 || h.status == 403 ? " (check AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE))"
                                               : "");
        goto done;
    }
    if ((rc = json_object_from(&j, "response", &h.resp, why, sizeof why)) == MF_OK)
        rc = creds_from_json(out, "response", j, "Token", true, why, sizeof why);
    if (rc == MF_EINVAL)
        rc = mf__error_set(MF_EINVAL, "container: credentials from '%s': %s", shown, why);
done:
    json_free(j);
    http_dispose(&h);
    buf_wipe(&tok);
    return rc;
}

/* ---- EC2 instance metadata (IMDSv2, IMDSv1 as botocore's fallback) */

static int no_credentials(const mf__s3cfg *cfg, int code, const char *base, const char *why)
{
    return mf__error_set(
        code,
        "no AWS credentials found in any source: not in the environment (AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY), web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), the "
        "shared credentials or config file (profile '%s'), a credential_process, container "
        "credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), nor the EC2 instance "
        "metadata service (imds at '%s': %s)",
        cfg->profile ? cfg->profile : "default", base, why);
}

/* IAM role names: [A-Za-z0-9+=,.@_-], 1..64; anything else in a URL path
 * could change the request. */
static bool role_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("+=,.@_-", s[i]))
            return false;
    return true;
}

static int fetch_imds(const mf__s3cfg *cfg, creds *out)
{
    char base[512], shown[512], why[QUOTE_MAX * 2 + 256], role[65];
    snprintf(base, sizeof base, "%s",
             cfg->imds_endpoint ? cfg->imds_endpoint : "http://169.254.169.254");
    for (size_t n = strlen(base); n && base[n - 1] == '/';)
        base[--n] = '\0';
    url_shown(shown, sizeof shown, base);
    if (cfg->imds_disabled)
        return no_credentials(cfg, MF_ENOTFOUND, shown, "disabled by AWS_EC2_METADATA_DISABLED");

    int attempts = cfg->imds_attempts > 0 ? cfg->imds_attempts : 1;
    long timeout = 1000L * (cfg->imds_timeout_s > 0 ? cfg->imds_timeout_s : 1);
    mf_buf url = MF_BUF_INIT, token = MF_BUF_INIT;
    http h = { 0 };
    json_t *j = NULL;
    int rc;
    bool have_token = false;
    why[0] = '\0';
    h.connect_ms = h.timeout_ms = timeout;
    h.ca_bundle = cfg->ca_bundle;

    /* 1. the session token */
    if ((rc = mf__buf_printf(&url, "%s/latest/api/token", base)) != MF_OK ||
        (rc = http_header(&h, "X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL)) != MF_OK)
        goto done;
    h.method = "PUT";
    h.url = url.ptr;
    for (int attempt = 1; attempt <= attempts; attempt++) {
        rc = http_run(&h);
        if (rc != MF_OK && rc != MF_EIO)
            goto done;
        if (rc == MF_EIO) {
            snprintf(why, sizeof why, "%s%s", h.connected ? "token request: " : "", h.why);
            if (h.connected)
                break; /* timed out after connecting: botocore goes on without a token */
        } else if (h.status == 200) {
            if ((rc = mf__buf_grow(&token, BODY_MAX)) != MF_OK)
                goto done;
            size_t n = h.resp.size;
            while (n && isspace((unsigned char)h.resp.ptr[n - 1]))
                n--;
            memcpy(token.ptr, h.resp.ptr, n);
            token.ptr[n] = '\0';
            token.size = n;
            have_token = n > 0 && !strpbrk(token.ptr, "\r\n");
            if (!have_token)
                snprintf(why, sizeof why, "the token response is empty or has a line break");
            break;
        } else if (h.status == 400) {
            snprintf(why, sizeof why, "the token request was refused (HTTP 400)");
            goto fail;
        } else {
            snprintf(why, sizeof why, "token request: HTTP %ld", h.status);
            if (h.status == 403 || h.status == 404 || h.status == 405)
                break;
        }
    }
    /* Nothing answered there: IMDSv1 would not either. */
    if (rc == MF_EIO && !h.connected)
        goto fail;
    rc = MF_OK;
    if (!have_token && cfg->imds_v1_disabled) {
        char tmp[sizeof why];
        snprintf(tmp, sizeof tmp, "no IMDSv2 token (%s) and IMDSv1 is disabled", why);
        snprintf(why, sizeof why, "%s", tmp);
        goto fail;
    }
    http_dispose(&h);
    if (have_token && (rc = http_header(&h, "X-aws-ec2-metadata-token", token.ptr)) != MF_OK)
        goto done;
    buf_wipe(&token);

    /* 2. the role: the first line */
    mf__buf_clear(&url);
    if ((rc = mf__buf_printf(&url, "%s/latest/meta-data/iam/security-credentials/", base)) != MF_OK)
        goto done;
    h.method = "GET";
    h.url = url.ptr;
    for (int attempt = 1; attempt <= attempts; attempt++) {
        rc = http_run(&h);
        if (rc != MF_OK && rc != MF_EIO)
            goto done;
        if (rc == MF_OK && h.status == 200 && h.resp.size)
            break;
    }
    if (rc == MF_EIO) {
        snprintf(why, sizeof why, "role request: %s", h.why);
        goto fail;
    }
    if (h.status == 404) {
        snprintf(why, sizeof why, "no IAM role is attached to this instance (HTTP 404)");
        goto fail;
    }
    if (h.status != 200) {
        snprintf(why, sizeof why, "role request: HTTP %ld", h.status);
        goto fail;
    }
    size_t n = strcspn(h.resp.ptr, "\r\n");
    while (n && isspace((unsigned char)h.resp.ptr[n - 1]))
        n--;
    if (!role_name_ok(h.resp.ptr, n)) {
        snprintf(why, sizeof why, "the role request gave no valid IAM role name");
        goto fail;
    }
    memcpy(role, h.resp.ptr, n);
    role[n] = '\0';

    /* 3. the role's credentials */
    mf__buf_clear(&url);
    if ((rc = mf__buf_printf(&url, "%s/latest/meta-data/iam/security-credentials/%s", base,
                             role)) != MF_OK)
        goto done;
    h.url = url.ptr;
    for (int attempt = 1; attempt <= attempts; attempt++) {
        json_free(j);
        j = NULL;
        rc = http_run(&h);
        if (rc != MF_OK && rc != MF_EIO)
            goto done;
        if (rc == MF_OK && h.status == 200) {
            rc = json_object_from(&j, "response", &h.resp, why, sizeof why);
            if (rc == MF_OK)
                break;
            if (rc != MF_EINVAL)
                goto done;
        }
    }
    if (rc == MF_EIO) {
        snprintf(why, sizeof why, "credentials request for role '%s': %s", role, h.why);
        goto fail;
    }
    if (h.status != 200) {
        snprintf(why, sizeof why, "credentials request for role '%s': HTTP %ld", role, h.status);
        goto fail;
    }
    if (rc == MF_EINVAL) {
        char tmp[sizeof why];
        snprintf(tmp, sizeof tmp, "credentials for role '%s': %s", role, why);
        snprintf(why, sizeof why, "%s", tmp);
        goto fail;
    }
    /* IMDS answers 200 with {"Code": ..., "Message": ...} when it cannot
     * give the role's credentials (EC2 is not trusted by the role). */
    const char *code = json_str(j, "Code");
    if (code && strcmp(code, "Success") != 0) {
        const char *msg = json_str(j, "Message");
        char qc[QUOTE_MAX + 4], qm[QUOTE_MAX + 4];
        quote(qc, sizeof qc, code, strlen(code));
        quote(qm, sizeof qm, msg ? msg : "", msg ? strlen(msg) : 0);
        snprintf(why, sizeof why, "credentials for role '%s': %s%s%s", role, qc, qm[0] ? ": " : "",
                 qm);
        goto fail;
    }
    rc = creds_from_json(out, "response", j, "Token", true, why, sizeof why);
    if (rc == MF_EINVAL) {
        char tmp[sizeof why];
        snprintf(tmp, sizeof tmp, "credentials for role '%s': %s", role, why);
        snprintf(why, sizeof why, "%s", tmp);
        goto fail;
    }
    goto done;
fail:
    rc = no_credentials(cfg, MF_EIO, shown, why);
done:
    json_free(j);
    http_dispose(&h);
    buf_wipe(&token);
    mf_buf_dispose(&url);
    return rc;
}

/* ---- credential_process */

/* Move `fd` above 2, so that the child's dup2 onto 1 and 2 cannot clobber
 * it (a host that closed its stdio gets pipes there). */
static int fd_high(int fd)
{
    if (fd > 2)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

typedef struct proc_out {
    mf_buf out; /* stdout, wiped */
    bool too_big;
    char err[QUOTE_MAX + 1]; /* the start of stderr */
    size_t err_len;
    int status; /* from waitpid */
} proc_out;

static int run_process(const mf__s3cfg *cfg, proc_out *po)
{
    char eb[128];
    int op[2] = { -1, -1 }, ep[2] = { -1, -1 };
    int rc = mf__buf_grow(&po->out, BODY_MAX + 1);
    if (rc != MF_OK)
        return rc;
    po->out.size = 0;
    if (pipe2(op, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0 || (op[0] = fd_high(op[0])) < 0 ||
        (op[1] = fd_high(op[1])) < 0 || (ep[0] = fd_high(ep[0])) < 0 ||
        (ep[1] = fd_high(ep[1])) < 0) {
        int err = errno;
        rc = mf__error_set(MF_EIO, "process: cannot make a pipe: %s",
                           errno_text(err, eb, sizeof eb));
        goto close_all;
    }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE); /* a host that ignores SIGPIPE must not pass that on */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, op[1], 1);
    posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
    posix_spawnattr_init(&at);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = { (char *)"sh", (char *)"-c", cfg->credential_process, NULL };
    pid_t pid;
    int err = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(op[1]);
    close(ep[1]);
    op[1] = ep[1] = -1;
    if (err) {
        rc = mf__error_set(
            MF_EIO, "process: cannot run /bin/sh for the credential_process of profile '%s': %s",
            cfg->profile ? cfg->profile : "default", errno_text(err, eb, sizeof eb));
        goto close_all;
    }

    while (op[0] >= 0 || ep[0] >= 0) {
        struct pollfd pf[2] = { { op[0], POLLIN, 0 }, { ep[0], POLLIN, 0 } };
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break; /* cannot happen with valid descriptors; reap below */
        }
        if (pf[0].revents) {
            /* One byte more than the limit tells "too big" from "exactly". */
            ssize_t n = read(op[0], po->out.ptr + po->out.size, BODY_MAX + 1 - po->out.size);
            if (n < 0 && errno == EINTR)
                continue;
            if (n > 0)
                po->out.size += (size_t)n;
            if (n <= 0 || po->out.size > BODY_MAX) {
                po->too_big = po->out.size > BODY_MAX;
                close(op[0]); /* a child still writing gets EPIPE */
                op[0] = -1;
            }
        }
        if (pf[1].revents) {
            char buf[512];
            ssize_t n = read(ep[0], buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n > 0) {
                size_t keep =
                    (size_t)n < QUOTE_MAX - po->err_len ? (size_t)n : QUOTE_MAX - po->err_len;
                memcpy(po->err + po->err_len, buf, keep);
                po->err_len += keep;
            } else {
                close(ep[0]);
                ep[0] = -1;
            }
        }
    }
    po->out.ptr[po->out.size] = '\0';
    while (waitpid(pid, &po->status, 0) < 0) {
        if (errno != EINTR) {
            err = errno;
            rc = mf__error_set(
                MF_EIO, "process: cannot wait for the credential_process of profile '%s': %s",
                cfg->profile ? cfg->profile : "default", errno_text(err, eb, sizeof eb));
            goto close_all;
        }
    }
    rc = MF_OK;
close_all:
    for (int i = 0; i < 2; i++) {
        if (op[i] >= 0)
            close(op[i]);
        if (ep[i] >= 0)
            close(ep[i]);
    }
    return rc;
}

static int fetch_process(const mf__s3cfg *cfg, creds *out)
{
    const char *profile = cfg->profile ? cfg->profile : "default";
    if (!cfg->credential_process)
        return mf__error_set(MF_EINVAL, "process: profile '%s' has no credential_process", profile);
    proc_out po;
    memset(&po, 0, sizeof po);
    json_t *j = NULL;
    char why[QUOTE_MAX + 256];
    int rc = run_process(cfg, &po);
    if (rc != MF_OK)
        goto done;
    /* Before the exit status: that may only say the child died of the
     * pipe closed on it. */
    if (po.too_big) {
        rc = mf__error_set(
            MF_EINVAL, "process: the credential_process of profile '%s' wrote more than %u bytes",
            profile, BODY_MAX);
        goto done;
    }
    if (!WIFEXITED(po.status) || WEXITSTATUS(po.status) != 0) {
        char how[64], q[QUOTE_MAX + 4];
        if (WIFEXITED(po.status))
            snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(po.status));
        else
            snprintf(how, sizeof how, "was killed by signal %d",
                     WIFSIGNALED(po.status) ? WTERMSIG(po.status) : 0);
        quote(q, sizeof q, po.err, po.err_len);
        rc = mf__error_set(MF_EIO, "process: the credential_process of profile '%s' %s%s%s",
                           profile, how, q[0] ? ": " : " (nothing on stderr)", q);
        goto done;
    }
    rc = json_object_from(&j, "output", &po.out, why, sizeof why);
    if (rc == MF_OK) {
        json_t *v = json_object_get(j, "Version");
        if (!json_is_number(v) || json_number_value(v) != 1.0) {
            rc = MF_EINVAL;
            snprintf(why, sizeof why, "%s (only Version 1 is supported)",
                     !v ? "the output has no Version" : "unsupported Version");
        } else {
            rc = creds_from_json(out, "output", j, NULL, false, why, sizeof why);
        }
    }
    if (rc == MF_EINVAL)
        rc = mf__error_set(MF_EINVAL, "process: the credential_process of profile '%s': %s",
                           profile, why);
done:
    json_free(j);
    buf_wipe(&po.out);
    OPENSSL_cleanse(po.err, sizeof po.err);
    return rc;
}

/* ---- the entry points */

/* The static name of a source fetched here, or NULL. */
static const char *network_source(const char *s)
{
    static const char *const names[] = { "web-identity", "container", "imds", "process",
                                         "assume-role", "sso" };
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0)
            return names[i];
    return NULL;
}

int mf__s3creds_fetch_new(mf__s3cfg *cfg, mf__s3creds *out)
{
    memset(out, 0, sizeof *out);
    const char *src = cfg->pending ? cfg->pending : network_source(cfg->source);
    if (!src && cfg->source)
        return mf__error_set(MF_EINVAL,
                             "AWS credentials from %s cannot be fetched again (only web-identity, "
                             "assume-role, sso, container, imds and process ones can)%s",
                             cfg->source,
                             cfg->expiration ? ": they expire and must be renewed there" : "");
    if (!src)
        return mf__error_set(MF_EINVAL, "AWS credentials: no source to fetch from");
    const char *name = network_source(src);
    if (!name)
        return mf__error_set(MF_EINVAL, "AWS credentials: unknown source '%s'", src);

    int rc = strcmp(name, "process") == 0 ? MF_OK : mf__s3_curl_ready();
    if (rc == MF_OK) {
        switch (name[0]) {
        case 'w': rc = fetch_web_identity(cfg, out); break;
        case 'c': rc = fetch_container(cfg, out); break;
        case 'i': rc = fetch_imds(cfg, out); break;
        case 'a': rc = fetch_assume_role(cfg, out); break;
        case 's': rc = fetch_sso(cfg, out); break;
        default: rc = fetch_process(cfg, out); break;
        }
    }
    if (rc != MF_OK) {
        creds_wipe(out);
        return rc;
    }
    out->source = name;
    return MF_OK;
}

int mf__s3creds_install(mf__s3cfg *cfg, mf__s3creds *c)
{
    char *source = strdup(c->source);
    if (!source) {
        creds_wipe(c);
        return mf__error_oom();
    }
    mf__secret_free(cfg->access_key_id);
    mf__secret_free(cfg->secret_access_key);
    mf__secret_free(cfg->session_token);
    free(cfg->source);
    cfg->access_key_id = c->id;
    cfg->secret_access_key = c->secret;
    cfg->session_token = c->token;
    cfg->expiration = c->expiration;
    cfg->source = source;
    cfg->pending = NULL;
    memset(c, 0, sizeof *c);
    return MF_OK;
}

int mf__s3creds_fetch(mf__s3cfg *cfg)
{
    mf__s3creds c;
    int rc = mf__s3creds_fetch_new(cfg, &c);
    return rc != MF_OK ? rc : mf__s3creds_install(cfg, &c);
}

bool mf__s3creds_refreshable(const mf__s3cfg *cfg)
{
    return !cfg->pending && network_source(cfg->source) != NULL;
}

bool mf__s3creds_expiring(const mf__s3cfg *cfg, int64_t now, int64_t margin)
{
    if (cfg->expiration == 0)
        return false;
    if (margin < 0)
        margin = 0;
    if (now > INT64_MAX - margin)
        return true;
    return cfg->expiration <= now + margin;
}
