/* The XML of the S3 REST API: streaming parsers and request bodies (see xml.h). */
#include <expat.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* Numbers, booleans and times: room for any value with some whitespace. */
#define SMALL_MAX 64
/* XML_Parse takes an int length. */
#define CHUNK_MAX (1 << 20)
/* The most of an unknown name or a value quoted in a message. */
#define QUOTE_MAX 200

/* ---- the documents, the elements read and the role of each */

enum doc { DOC_ERROR, DOC_LIST, DOC_INITIATE, DOC_COMPLETE, DOC_DELETE };

static const char *const doc_what[] = {
    [DOC_ERROR] = "S3 error response",
    [DOC_LIST] = "ListObjectsV2 response",
    [DOC_INITIATE] = "InitiateMultipartUpload response",
    [DOC_COMPLETE] = "CompleteMultipartUpload response",
    [DOC_DELETE] = "DeleteObjects response",
};

/* Element names this file reads. */
enum elem {
    E_OTHER,
    E_LIST_BUCKET_RESULT, E_CONTENTS, E_KEY, E_SIZE, E_LAST_MODIFIED, E_ETAG,
    E_COMMON_PREFIXES, E_PREFIX, E_IS_TRUNCATED, E_NEXT_TOKEN, E_KEY_COUNT, E_ENCODING_TYPE,
    E_ERROR, E_CODE, E_MESSAGE, E_REQUEST_ID, E_HOST_ID, E_RESOURCE,
    E_INITIATE_RESULT, E_UPLOAD_ID, E_COMPLETE_RESULT, E_COMPLETE_RESPONSE,
    E_DELETE_RESULT, E_DELETED,
    E_COUNT
};

static const char *const elem_name[E_COUNT] = {
    [E_OTHER] = "?",
    [E_LIST_BUCKET_RESULT] = "ListBucketResult",
    [E_CONTENTS] = "Contents",
    [E_KEY] = "Key",
    [E_SIZE] = "Size",
    [E_LAST_MODIFIED] = "LastModified",
    [E_ETAG] = "ETag",
    [E_COMMON_PREFIXES] = "CommonPrefixes",
    [E_PREFIX] = "Prefix",
    [E_IS_TRUNCATED] = "IsTruncated",
    [E_NEXT_TOKEN] = "NextContinuationToken",
    [E_KEY_COUNT] = "KeyCount",
    [E_ENCODING_TYPE] = "EncodingType",
    [E_ERROR] = "Error",
    [E_CODE] = "Code",
    [E_MESSAGE] = "Message",
    [E_REQUEST_ID] = "RequestId",
    [E_HOST_ID] = "HostId",
    [E_RESOURCE] = "Resource",
    [E_INITIATE_RESULT] = "InitiateMultipartUploadResult",
    [E_UPLOAD_ID] = "UploadId",
    [E_COMPLETE_RESULT] = "CompleteMultipartUploadResult",
    /* moto names the root after its generic "<Action>Response" template */
    [E_COMPLETE_RESPONSE] = "CompleteMultipartUploadResponse",
    [E_DELETE_RESULT] = "DeleteResult",
    [E_DELETED] = "Deleted",
};

/* What an open element means here, from its name and its parent's role.
 * R_IGNORE elements (unknown ones, or known names in other places) and all
 * they contain are skipped without keeping their text. */
enum role {
    R_IGNORE,
    R_ROOT, R_ERROR_ROOT,
    /* containers: one entry each */
    R_CONTENTS, R_COMMON_PREFIXES, R_DELETED, R_DELETE_ERROR,
    /* leaves: their text is kept, up to the role's cap */
    R_IS_TRUNCATED, R_NEXT_TOKEN, R_KEY_COUNT, R_ENCODING_TYPE,
    R_OBJ_KEY, R_OBJ_SIZE, R_OBJ_MTIME, R_OBJ_ETAG, R_PREFIX,
    R_ERR_CODE, R_ERR_MESSAGE, R_ERR_REQUEST_ID, R_ERR_HOST_ID, R_ERR_RESOURCE,
    R_UPLOAD_ID, R_COMPLETE_ETAG,
    R_DEL_KEY, R_DEL_CODE, R_DEL_MESSAGE,
    R_COUNT
};

#define R_FIRST_LEAF R_IS_TRUNCATED
#define BIT(r) (UINT64_C(1) << (r))
_Static_assert(R_COUNT <= 64, "roles must fit the 'seen' bit masks");

static const struct {
    uint8_t elem;
    uint32_t cap;
} role_info[R_COUNT] = {
    [R_IGNORE] = { E_OTHER, 0 },
    [R_ROOT] = { E_OTHER, 0 },
    [R_ERROR_ROOT] = { E_ERROR, 0 },
    [R_CONTENTS] = { E_CONTENTS, 0 },
    [R_COMMON_PREFIXES] = { E_COMMON_PREFIXES, 0 },
    [R_DELETED] = { E_DELETED, 0 },
    [R_DELETE_ERROR] = { E_ERROR, 0 },
    [R_IS_TRUNCATED] = { E_IS_TRUNCATED, SMALL_MAX },
    [R_NEXT_TOKEN] = { E_NEXT_TOKEN, MF__S3XML_KEY_MAX },
    [R_KEY_COUNT] = { E_KEY_COUNT, SMALL_MAX },
    [R_ENCODING_TYPE] = { E_ENCODING_TYPE, SMALL_MAX },
    [R_OBJ_KEY] = { E_KEY, MF__S3XML_KEY_MAX },
    [R_OBJ_SIZE] = { E_SIZE, SMALL_MAX },
    [R_OBJ_MTIME] = { E_LAST_MODIFIED, SMALL_MAX },
    [R_OBJ_ETAG] = { E_ETAG, MF__S3XML_ETAG_MAX - 1 },
    [R_PREFIX] = { E_PREFIX, MF__S3XML_KEY_MAX },
    [R_ERR_CODE] = { E_CODE, MF__S3XML_CODE_MAX - 1 },
    [R_ERR_MESSAGE] = { E_MESSAGE, MF__S3XML_MESSAGE_MAX },
    [R_ERR_REQUEST_ID] = { E_REQUEST_ID, MF__S3XML_KEY_MAX },
    [R_ERR_HOST_ID] = { E_HOST_ID, MF__S3XML_KEY_MAX },
    [R_ERR_RESOURCE] = { E_RESOURCE, MF__S3XML_KEY_MAX },
    [R_UPLOAD_ID] = { E_UPLOAD_ID, MF__S3XML_UPLOAD_ID_MAX - 1 },
    [R_COMPLETE_ETAG] = { E_ETAG, MF__S3XML_ETAG_MAX - 1 },
    [R_DEL_KEY] = { E_KEY, MF__S3XML_KEY_MAX },
    [R_DEL_CODE] = { E_CODE, MF__S3XML_CODE_MAX - 1 },
    [R_DEL_MESSAGE] = { E_MESSAGE, MF__S3XML_MESSAGE_MAX },
};

struct mf__s3xml {
    XML_Parser xp;
    enum doc doc;
    const char *what;
    int rc;         /* the first failure; every later call returns it */
    bool parsing;   /* inside XML_Parse: messages give the position */
    bool started;   /* a byte other than leading whitespace was fed */
    bool finished;
    bool error_doc; /* the root is <Error> */
    size_t fed;
    unsigned depth;
    uint8_t role[MF__S3XML_DEPTH_MAX + 1];  /* role[d]: the element at depth d (1 = root) */
    uint64_t seen[MF__S3XML_DEPTH_MAX + 1]; /* seen[d]: leaf roles read in that element */
    bool capturing;
    mf_buf text;
    char msg[1024]; /* the first failure's message, repeated by later calls */

    mf__s3xml_error *err; /* where an <Error> root goes */
    mf__s3xml_error err_scratch;

    /* ListObjectsV2 */
    mf__s3xml_listing *list;
    uint32_t flags;
    mf__s3xml_list_cbs cbs;
    bool encoding_url;
    /* the entry being read (Contents, CommonPrefixes, Deleted, Error) */
    mf_buf key, etag, code, message;
    uint64_t size;
    int64_t mtime;

    mf__s3xml_initiate *initiate;
    mf__s3xml_complete *complete;
    mf__s3xml_delete *del;
    mf__s3xml_delete_cb del_cb;
    void *del_payload;
};

/* ---- failures */

static void fail(mf__s3xml *x, int code, const char *fmt, ...) MF__PRINTF(3, 4);

/* Record the first failure (later ones are consequences) and stop expat. */
static void fail(mf__s3xml *x, int code, const char *fmt, ...)
{
    if (x->rc != MF_OK)
        return;
    if (code == MF_ENOMEM) {
        x->rc = mf__error_oom();
    } else {
        char why[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        if (x->parsing)
            x->rc = mf__error_set(code, "%s, line %lu column %lu: %s", x->what,
                                  (unsigned long)XML_GetCurrentLineNumber(x->xp),
                                  (unsigned long)XML_GetCurrentColumnNumber(x->xp) + 1, why);
        else
            x->rc = mf__error_set(code, "%s: %s", x->what, why);
    }
    snprintf(x->msg, sizeof x->msg, "%s", mf_error_last());
    if (x->parsing)
        XML_StopParser(x->xp, XML_FALSE);
}

static int sticky(mf__s3xml *x)
{
    return mf__error_set(x->rc, "%s", x->msg);
}

/* ---- small parsers */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_space((*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space((*s)[*n - 1]))
        (*n)--;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    trim(&s, &n);
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* xsd:boolean: S3 writes "true"/"false"; "1"/"0" are the same values. */
static bool parse_bool(const char *s, size_t n, bool *out)
{
    trim(&s, &n);
    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 1 && s[0] == '1'))
        *out = true;
    else if ((n == 5 && memcmp(s, "false", 5) == 0) || (n == 1 && s[0] == '0'))
        *out = false;
    else
        return false;
    return true;
}

bool mf__s3xml_parse_time(const char *s, size_t len, int64_t *out)
{
    return mf__iso8601_parse(s, len, 0, out);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* MF_OK, MF_ENOMEM (message set), or MF_ECORRUPT with the offending byte
 * offset in *bad and no message (the caller knows what the text was). */
static int url_decode(mf_buf *out, const char *s, size_t len, size_t *bad)
{
    out->size = 0;
    int rc = mf__buf_grow(out, len);
    if (rc != MF_OK)
        return rc;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\0') {
            *bad = i;
            out->ptr[0] = '\0';
            return MF_ECORRUPT;
        }
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (lo < 0 || (hi | lo) == 0) {
                *bad = i;
                out->ptr[0] = '\0';
                return MF_ECORRUPT;
            }
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        out->ptr[o++] = c;
    }
    out->ptr[o] = '\0';
    out->size = o;
    return MF_OK;
}

/* Why url_decode() refused the byte at `at`. */
static const char *decode_fault(const char *s, size_t len, size_t at)
{
    if (s[at] == '\0')
        return "a NUL byte";
    if (at + 2 < len && s[at + 1] == '0' && s[at + 2] == '0')
        return "%00 (a NUL byte)";
    return "a bad percent-escape";
}

int mf__s3xml_url_decode(mf_buf *out, const char *s, size_t len)
{
    size_t bad = 0;
    int rc = url_decode(out, s, len, &bad);
    if (rc == MF_ECORRUPT)
        rc = mf__error_set(MF_ECORRUPT, "URL-encoded text: %s at byte %zu",
                           decode_fault(s, len, bad), bad);
    return rc;
}

/* ---- the parser */

static const char *text_of(const mf_buf *b)
{
    return b->ptr ? b->ptr : "";
}

static enum elem lookup(const char *name)
{
    for (int e = 1; e < E_COUNT; e++)
        if (strcmp(name, elem_name[e]) == 0)
            return (enum elem)e;
    return E_OTHER;
}

static enum role child_role(const mf__s3xml *x, enum role parent, enum elem e)
{
    switch (parent) {
    case R_ERROR_ROOT:
        switch (e) {
        case E_CODE: return R_ERR_CODE;
        case E_MESSAGE: return R_ERR_MESSAGE;
        case E_REQUEST_ID: return R_ERR_REQUEST_ID;
        case E_HOST_ID: return R_ERR_HOST_ID;
        case E_RESOURCE: return R_ERR_RESOURCE;
        default: return R_IGNORE;
        }
    case R_ROOT:
        switch (x->doc) {
        case DOC_LIST:
            switch (e) {
            case E_IS_TRUNCATED: return R_IS_TRUNCATED;
            case E_NEXT_TOKEN: return R_NEXT_TOKEN;
            case E_KEY_COUNT: return R_KEY_COUNT;
            case E_ENCODING_TYPE: return R_ENCODING_TYPE;
            case E_CONTENTS: return R_CONTENTS;
            case E_COMMON_PREFIXES: return R_COMMON_PREFIXES;
            default: return R_IGNORE;
            }
        case DOC_INITIATE: return e == E_UPLOAD_ID ? R_UPLOAD_ID : R_IGNORE;
        case DOC_COMPLETE: return e == E_ETAG ? R_COMPLETE_ETAG : R_IGNORE;
        case DOC_DELETE:
            return e == E_DELETED ? R_DELETED : e == E_ERROR ? R_DELETE_ERROR : R_IGNORE;
        case DOC_ERROR: return R_IGNORE;
        }
        return R_IGNORE;
    case R_CONTENTS:
        switch (e) {
        case E_KEY: return R_OBJ_KEY;
        case E_SIZE: return R_OBJ_SIZE;
        case E_LAST_MODIFIED: return R_OBJ_MTIME;
        case E_ETAG: return R_OBJ_ETAG;
        default: return R_IGNORE;
        }
    case R_COMMON_PREFIXES: return e == E_PREFIX ? R_PREFIX : R_IGNORE;
    case R_DELETED: return e == E_KEY ? R_DEL_KEY : R_IGNORE;
    case R_DELETE_ERROR:
        switch (e) {
        case E_KEY: return R_DEL_KEY;
        case E_CODE: return R_DEL_CODE;
        case E_MESSAGE: return R_DEL_MESSAGE;
        default: return R_IGNORE;
        }
    default: return R_IGNORE;
    }
}

static bool root_ok(enum doc doc, enum elem e)
{
    switch (doc) {
    case DOC_LIST: return e == E_LIST_BUCKET_RESULT;
    case DOC_INITIATE: return e == E_INITIATE_RESULT;
    case DOC_COMPLETE: return e == E_COMPLETE_RESULT || e == E_COMPLETE_RESPONSE;
    case DOC_DELETE: return e == E_DELETE_RESULT;
    case DOC_ERROR: return false; /* only <Error> */
    }
    return false;
}

static const char *root_name(enum doc doc)
{
    switch (doc) {
    case DOC_LIST: return "ListBucketResult";
    case DOC_INITIATE: return "InitiateMultipartUploadResult";
    case DOC_COMPLETE: return "CompleteMultipartUploadResult";
    case DOC_DELETE: return "DeleteResult";
    case DOC_ERROR: return "Error";
    }
    return "?";
}

static void start_root(mf__s3xml *x, enum elem e, const char *name)
{
    if (e == E_ERROR) {
        x->error_doc = true;
        x->role[1] = R_ERROR_ROOT;
        memset(x->err, 0, sizeof *x->err);
    } else if (root_ok(x->doc, e)) {
        x->role[1] = R_ROOT;
    } else {
        fail(x, MF_ECORRUPT, "the root element is <%.*s>, not <%s>", QUOTE_MAX, name,
             root_name(x->doc));
    }
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    mf__s3xml *x = ud;
    (void)atts;
    if (x->rc != MF_OK)
        return;
    if (x->capturing) {
        fail(x, MF_ECORRUPT, "<%.*s> inside <%s>, which holds only text", QUOTE_MAX, name,
             elem_name[role_info[x->role[x->depth]].elem]);
        return;
    }
    if (x->depth == MF__S3XML_DEPTH_MAX) {
        fail(x, MF_ECORRUPT, "elements nest more than %d deep", MF__S3XML_DEPTH_MAX);
        return;
    }
    unsigned d = ++x->depth;
    x->seen[d] = 0;
    enum elem e = lookup(name);
    if (d == 1) {
        start_root(x, e, name);
        return;
    }
    enum role parent = (enum role)x->role[d - 1];
    enum role r = parent == R_IGNORE ? R_IGNORE : child_role(x, parent, e);
    x->role[d] = (uint8_t)r;
    if (r < R_FIRST_LEAF) {
        if (r != R_IGNORE) { /* an entry starts */
            x->size = 0;
            x->mtime = 0;
            mf__buf_clear(&x->key);
            mf__buf_clear(&x->etag);
            mf__buf_clear(&x->code);
            mf__buf_clear(&x->message);
        }
        return;
    }
    if (x->seen[d - 1] & BIT(r)) {
        fail(x, MF_ECORRUPT, "<%s> appears twice in <%s>", elem_name[role_info[r].elem],
             parent == R_ROOT ? root_name(x->doc) : elem_name[role_info[parent].elem]);
        return;
    }
    x->seen[d - 1] |= BIT(r);
    x->capturing = true;
    mf__buf_clear(&x->text);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    mf__s3xml *x = ud;
    if (x->rc != MF_OK || !x->capturing || len <= 0)
        return;
    enum role r = (enum role)x->role[x->depth];
    if ((size_t)len > role_info[r].cap - x->text.size) {
        fail(x, MF_ECORRUPT, "<%s> is longer than %u bytes", elem_name[role_info[r].elem],
             (unsigned)role_info[r].cap);
        return;
    }
    if (mf__buf_put(&x->text, s, (size_t)len) != MF_OK)
        fail(x, MF_ENOMEM, "out of memory");
}

/* Copy into a fixed field, cutting at a character boundary with "...". */
static void copy_cut(char *dst, size_t cap, const char *s, size_t n)
{
    if (n < cap) {
        memcpy(dst, s, n);
        dst[n] = '\0';
        return;
    }
    size_t cut = cap - 4;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    memcpy(dst, s, cut);
    memcpy(dst + cut, "...", 4);
}

/* Decode (or copy) a key or prefix of a listing into `out`. */
static bool list_name(mf__s3xml *x, mf_buf *out, const char *s, size_t n, const char *elem)
{
    if (x->flags & MF__S3XML_URL) {
        size_t bad = 0;
        int rc = url_decode(out, s, n, &bad);
        if (rc == MF_ENOMEM) {
            fail(x, MF_ENOMEM, "out of memory");
            return false;
        }
        if (rc != MF_OK) {
            fail(x, MF_ECORRUPT, "<%s> '%.*s' has %s at byte %zu (URL encoding)", elem,
                 QUOTE_MAX, s, decode_fault(s, n, bad), bad);
            return false;
        }
    } else if (mf__buf_set(out, s, n) != MF_OK) {
        fail(x, MF_ENOMEM, "out of memory");
        return false;
    }
    if (out->size == 0) {
        fail(x, MF_ECORRUPT, "empty <%s>", elem);
        return false;
    }
    return true;
}

static void end_leaf(mf__s3xml *x, enum role r)
{
    const char *s = text_of(&x->text);
    size_t n = x->text.size;
    const char *name = elem_name[role_info[r].elem];
    bool ok = true;
    switch (r) {
    case R_IS_TRUNCATED: ok = parse_bool(s, n, &x->list->is_truncated); break;
    case R_KEY_COUNT:
        ok = parse_u64(s, n, &x->list->key_count);
        x->list->has_key_count = true;
        break;
    case R_ENCODING_TYPE: {
        const char *t = s;
        size_t tn = n;
        trim(&t, &tn);
        if (tn != 3 || memcmp(t, "url", 3) != 0) {
            fail(x, MF_ECORRUPT, "unknown <EncodingType> '%.*s'", QUOTE_MAX, s);
            return;
        }
        x->encoding_url = true;
        break;
    }
    case R_NEXT_TOKEN:
        if (mf__buf_set(&x->list->next_token, s, n) != MF_OK)
            fail(x, MF_ENOMEM, "out of memory");
        return;
    case R_OBJ_KEY:
    case R_PREFIX:
        list_name(x, &x->key, s, n, name);
        return;
    case R_DEL_KEY:
        if (n == 0)
            fail(x, MF_ECORRUPT, "empty <Key>");
        else if (mf__buf_set(&x->key, s, n) != MF_OK)
            fail(x, MF_ENOMEM, "out of memory");
        return;
    case R_OBJ_SIZE: ok = parse_u64(s, n, &x->size); break;
    case R_OBJ_MTIME: {
        const char *t = s;
        size_t tn = n;
        trim(&t, &tn);
        ok = mf__s3xml_parse_time(t, tn, &x->mtime);
        break;
    }
    case R_OBJ_ETAG:
        if (mf__buf_set(&x->etag, s, n) != MF_OK)
            fail(x, MF_ENOMEM, "out of memory");
        return;
    case R_DEL_CODE:
        if (mf__buf_set(&x->code, s, n) != MF_OK)
            fail(x, MF_ENOMEM, "out of memory");
        return;
    case R_DEL_MESSAGE:
        if (mf__buf_set(&x->message, s, n) != MF_OK)
            fail(x, MF_ENOMEM, "out of memory");
        return;
    /* the caps keep these within their fields */
    case R_ERR_CODE: memcpy(x->err->code, s, n + 1); return;
    case R_UPLOAD_ID: memcpy(x->initiate->upload_id, s, n + 1); return;
    case R_COMPLETE_ETAG: memcpy(x->complete->etag, s, n + 1); return;
    case R_ERR_MESSAGE: copy_cut(x->err->message, sizeof x->err->message, s, n); return;
    case R_ERR_REQUEST_ID: copy_cut(x->err->request_id, sizeof x->err->request_id, s, n); return;
    case R_ERR_HOST_ID: copy_cut(x->err->host_id, sizeof x->err->host_id, s, n); return;
    case R_ERR_RESOURCE: copy_cut(x->err->resource, sizeof x->err->resource, s, n); return;
    default: return;
    }
    if (!ok)
        fail(x, MF_ECORRUPT, "<%s> '%.*s' is not %s", name, QUOTE_MAX, s,
             r == R_IS_TRUNCATED ? "true or false"
             : r == R_OBJ_MTIME  ? "an ISO 8601 UTC time"
                                 : "a 64-bit unsigned number");
}

/* What an entry lacks, or NULL. */
static const char *missing(uint64_t seen, uint64_t need)
{
    static const enum role order[] = { R_OBJ_KEY, R_OBJ_SIZE, R_OBJ_MTIME, R_PREFIX,
                                       R_DEL_KEY, R_DEL_CODE };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((need & BIT(order[i])) && !(seen & BIT(order[i])))
            return elem_name[role_info[order[i]].elem];
    return NULL;
}

static void stopped(mf__s3xml *x, const char *what, const char *key)
{
    fail(x, MF_EUSER, "the callback stopped at %s '%.*s'", what, QUOTE_MAX, key);
}

static void end_entry(mf__s3xml *x, enum role r)
{
    uint64_t seen = x->seen[x->depth];
    const char *lack;
    switch (r) {
    case R_CONTENTS: {
        lack = missing(seen, BIT(R_OBJ_KEY) | BIT(R_OBJ_SIZE) | BIT(R_OBJ_MTIME));
        if (lack) {
            fail(x, MF_ECORRUPT, "<Contents> #%llu%s%.*s%s has no <%s>",
                 (unsigned long long)x->list->objects + 1, x->key.size ? " ('" : "",
                 QUOTE_MAX, text_of(&x->key), x->key.size ? "')" : "", lack);
            return;
        }
        x->list->objects++;
        const mf__s3xml_list_cbs *cb = &x->cbs;
        if (cb->object && cb->object(x->key.ptr, x->size, x->mtime, cb->payload) != 0) {
            stopped(x, "key", x->key.ptr);
            return;
        }
        if (cb->object_detail) {
            mf__s3xml_object o = { x->key.ptr, x->key.size, x->size, x->mtime,
                                   text_of(&x->etag) };
            if (cb->object_detail(&o, cb->payload) != 0)
                stopped(x, "key", x->key.ptr);
        }
        return;
    }
    case R_COMMON_PREFIXES:
        if (!(seen & BIT(R_PREFIX))) {
            fail(x, MF_ECORRUPT, "<CommonPrefixes> #%llu has no <Prefix>",
                 (unsigned long long)x->list->prefixes + 1);
            return;
        }
        x->list->prefixes++;
        if (x->cbs.prefix && x->cbs.prefix(x->key.ptr, x->cbs.payload) != 0)
            stopped(x, "prefix", x->key.ptr);
        return;
    case R_DELETED:
    case R_DELETE_ERROR: {
        bool error = r == R_DELETE_ERROR;
        lack = missing(seen, BIT(R_DEL_KEY) | (error ? BIT(R_DEL_CODE) : 0));
        if (lack) {
            fail(x, MF_ECORRUPT, "<%s> #%llu has no <%s>", error ? "Error" : "Deleted",
                 (unsigned long long)(error ? x->del->errors : x->del->deleted) + 1, lack);
            return;
        }
        if (error && x->code.size == 0) {
            fail(x, MF_ECORRUPT, "<Error> for key '%.*s' has an empty <Code>", QUOTE_MAX,
                 x->key.ptr);
            return;
        }
        if (error)
            x->del->errors++;
        else
            x->del->deleted++;
        if (x->del_cb && x->del_cb(x->key.ptr, error ? x->code.ptr : NULL,
                                   error ? text_of(&x->message) : NULL, x->del_payload) != 0)
            stopped(x, "key", x->key.ptr);
        return;
    }
    default: return;
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    mf__s3xml *x = ud;
    (void)name;
    if (x->rc != MF_OK)
        return;
    enum role r = (enum role)x->role[x->depth];
    if (x->capturing) {
        x->capturing = false;
        end_leaf(x, r);
    } else if (x->depth >= 2) {
        end_entry(x, r);
    }
    x->depth--;
}

/* A DOCTYPE is where entities are declared: refusing it at its start
 * means no entity (internal, external or parameter) is ever defined, so
 * none is expanded - no billion laughs, no external fetch. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)sysid, (void)pubid, (void)has_internal_subset;
    fail(ud, MF_ECORRUPT, "a DOCTYPE (<!DOCTYPE %.*s>) is not allowed", QUOTE_MAX, name);
}

/* Unreachable while DOCTYPEs are refused; kept so that no later change
 * can let an entity through unnoticed. */
static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid, (void)pubid;
    (void)notation;
    fail(ud, MF_ECORRUPT, "an entity declaration ('%.*s') is not allowed", QUOTE_MAX, name);
}

static int parser_new(mf__s3xml **out, enum doc doc)
{
    *out = NULL;
    mf__s3xml *x = calloc(1, sizeof *x);
    if (!x)
        return mf__error_oom();
    x->xp = XML_ParserCreate(NULL);
    if (!x->xp) {
        free(x);
        return mf__error_oom();
    }
    x->doc = doc;
    x->what = doc_what[doc];
    x->err = &x->err_scratch;
    XML_SetUserData(x->xp, x);
    XML_SetElementHandler(x->xp, on_start, on_end);
    XML_SetCharacterDataHandler(x->xp, on_text);
    XML_SetStartDoctypeDeclHandler(x->xp, on_doctype);
    XML_SetEntityDeclHandler(x->xp, on_entity);
    /* The default, stated: never read an external DTD or parameter entity. */
    XML_SetParamEntityParsing(x->xp, XML_PARAM_ENTITY_PARSING_NEVER);
    *out = x;
    return MF_OK;
}

void mf__s3xml_free(mf__s3xml *x)
{
    if (!x)
        return;
    XML_ParserFree(x->xp);
    mf_buf_dispose(&x->text);
    mf_buf_dispose(&x->key);
    mf_buf_dispose(&x->etag);
    mf_buf_dispose(&x->code);
    mf_buf_dispose(&x->message);
    free(x);
}

static const char *elem_at(const mf__s3xml *x, unsigned d)
{
    enum role r = (enum role)x->role[d];
    if (r == R_ROOT)
        return root_name(x->doc);
    return r == R_IGNORE ? "an element read past" : elem_name[role_info[r].elem];
}

static int parse(mf__s3xml *x, const char *p, size_t len, bool final)
{
    x->parsing = true;
    for (;;) {
        int n = len > CHUNK_MAX ? CHUNK_MAX : (int)len;
        bool last = final && (size_t)n == len;
        if (XML_Parse(x->xp, p, n, last) != XML_STATUS_OK) {
            if (x->rc == MF_OK) { /* expat's own verdict, not a handler's */
                enum XML_Error code = XML_GetErrorCode(x->xp);
                const char *why = XML_ErrorString(code);
                bool cut = code == XML_ERROR_NO_ELEMENTS || code == XML_ERROR_UNCLOSED_TOKEN ||
                           code == XML_ERROR_PARTIAL_CHAR ||
                           code == XML_ERROR_UNCLOSED_CDATA_SECTION;
                if (final && cut && x->depth > 0)
                    fail(x, MF_ECORRUPT, "the document ends inside <%s> (%s)",
                         elem_at(x, x->depth), why ? why : "?");
                else
                    fail(x, MF_ECORRUPT, "%s", why ? why : "malformed XML");
            }
            break;
        }
        p += n;
        len -= (size_t)n;
        if (len == 0)
            break;
    }
    x->parsing = false;
    return x->rc;
}

int mf__s3xml_feed(mf__s3xml *x, const void *data, size_t len)
{
    if (x->rc != MF_OK)
        return sticky(x);
    if (x->finished)
        return mf__error_set(MF_ESTATE, "%s: fed after its end", x->what);
    if (len > MF__S3XML_DOC_MAX - x->fed) {
        fail(x, MF_ECORRUPT, "longer than %u bytes", MF__S3XML_DOC_MAX);
        return x->rc;
    }
    x->fed += len;
    const char *p = data;
    if (!x->started) {
        while (len && is_space(*p)) {
            p++;
            len--;
        }
        if (len == 0)
            return MF_OK;
        x->started = true;
    }
    return parse(x, p, len, false);
}

/* An <Error> where another document was expected: S3's words, as MF_EIO. */
static int unexpected_error(mf__s3xml *x)
{
    fail(x, MF_EIO, "S3 answered with an error: %s: %s%s%s%s", x->err->code,
         x->err->message[0] ? x->err->message : "(no message)",
         x->err->request_id[0] ? " (request id " : "", x->err->request_id,
         x->err->request_id[0] ? ")" : "");
    return x->rc;
}

static int check_complete(mf__s3xml *x)
{
    if (x->error_doc) {
        if (x->err->code[0] == '\0') {
            fail(x, MF_ECORRUPT, "<Error> has no <Code>");
            return x->rc;
        }
        if (x->doc == DOC_COMPLETE)
            x->complete->failed = true;
        else if (x->doc != DOC_ERROR)
            return unexpected_error(x);
        return MF_OK;
    }
    switch (x->doc) {
    case DOC_LIST: {
        mf__s3xml_listing *l = x->list;
        if (!(x->seen[1] & BIT(R_IS_TRUNCATED)))
            fail(x, MF_ECORRUPT, "no <IsTruncated>");
        else if (l->is_truncated && l->next_token.size == 0)
            fail(x, MF_ECORRUPT, "<IsTruncated> is true but there is no <NextContinuationToken>");
        else if ((x->flags & MF__S3XML_URL) && !x->encoding_url)
            fail(x, MF_ECORRUPT, "the request asked for encoding-type=url but the response "
                 "has no <EncodingType>url</EncodingType>: its keys cannot be trusted");
        else if (!(x->flags & MF__S3XML_URL) && x->encoding_url)
            fail(x, MF_ECORRUPT, "<EncodingType>url</EncodingType> in a response to a request "
                 "that did not ask for it");
        break;
    }
    case DOC_INITIATE:
        if (x->initiate->upload_id[0] == '\0')
            fail(x, MF_ECORRUPT, "no <UploadId>, or an empty one");
        break;
    case DOC_COMPLETE:
        if (x->complete->etag[0] == '\0')
            fail(x, MF_ECORRUPT, "no <ETag>, or an empty one");
        break;
    case DOC_DELETE:
    case DOC_ERROR:
        break;
    }
    return x->rc;
}

int mf__s3xml_finish(mf__s3xml *x)
{
    if (x->rc != MF_OK)
        return sticky(x);
    if (x->finished)
        return mf__error_set(MF_ESTATE, "%s: finished twice", x->what);
    x->finished = true;
    if (!x->started) {
        fail(x, MF_ECORRUPT, "the response is empty");
        return x->rc;
    }
    if (parse(x, "", 0, true) != MF_OK)
        return x->rc;
    return check_complete(x);
}

/* ---- the documents */

static int run(mf__s3xml *x, const void *data, size_t len)
{
    int rc = mf__s3xml_feed(x, data, len);
    if (rc == MF_OK)
        rc = mf__s3xml_finish(x);
    mf__s3xml_free(x);
    return rc;
}

int mf__s3xml_error_new(mf__s3xml **x, mf__s3xml_error *out)
{
    memset(out, 0, sizeof *out);
    int rc = parser_new(x, DOC_ERROR);
    if (rc == MF_OK)
        (*x)->err = out;
    return rc;
}

int mf__s3xml_error_parse(mf__s3xml_error *out, const void *data, size_t len)
{
    mf__s3xml *x;
    int rc = mf__s3xml_error_new(&x, out);
    return rc != MF_OK ? rc : run(x, data, len);
}

void mf__s3xml_listing_dispose(mf__s3xml_listing *l)
{
    if (!l)
        return;
    mf_buf_dispose(&l->next_token);
    *l = (mf__s3xml_listing)MF__S3XML_LISTING_INIT;
}

int mf__s3xml_list_new(mf__s3xml **x, mf__s3xml_listing *out, uint32_t flags,
                       const mf__s3xml_list_cbs *cbs)
{
    /* keep the token's memory for the next page */
    mf_buf token = out->next_token;
    mf__buf_clear(&token);
    *out = (mf__s3xml_listing)MF__S3XML_LISTING_INIT;
    out->next_token = token;
    int rc = parser_new(x, DOC_LIST);
    if (rc != MF_OK)
        return rc;
    (*x)->list = out;
    (*x)->flags = flags;
    if (cbs)
        (*x)->cbs = *cbs;
    return MF_OK;
}

int mf__s3xml_list_parse(mf__s3xml_listing *out, const void *data, size_t len,
                         uint32_t flags, const mf__s3xml_list_cbs *cbs)
{
    mf__s3xml *x;
    int rc = mf__s3xml_list_new(&x, out, flags, cbs);
    return rc != MF_OK ? rc : run(x, data, len);
}

int mf__s3xml_initiate_new(mf__s3xml **x, mf__s3xml_initiate *out)
{
    memset(out, 0, sizeof *out);
    int rc = parser_new(x, DOC_INITIATE);
    if (rc == MF_OK)
        (*x)->initiate = out;
    return rc;
}

int mf__s3xml_initiate_parse(mf__s3xml_initiate *out, const void *data, size_t len)
{
    mf__s3xml *x;
    int rc = mf__s3xml_initiate_new(&x, out);
    return rc != MF_OK ? rc : run(x, data, len);
}

int mf__s3xml_complete_new(mf__s3xml **x, mf__s3xml_complete *out)
{
    memset(out, 0, sizeof *out);
    int rc = parser_new(x, DOC_COMPLETE);
    if (rc == MF_OK) {
        (*x)->complete = out;
        (*x)->err = &out->error;
    }
    return rc;
}

int mf__s3xml_complete_parse(mf__s3xml_complete *out, const void *data, size_t len)
{
    mf__s3xml *x;
    int rc = mf__s3xml_complete_new(&x, out);
    return rc != MF_OK ? rc : run(x, data, len);
}

int mf__s3xml_delete_new(mf__s3xml **x, mf__s3xml_delete *out, mf__s3xml_delete_cb cb,
                         void *payload)
{
    memset(out, 0, sizeof *out);
    int rc = parser_new(x, DOC_DELETE);
    if (rc == MF_OK) {
        (*x)->del = out;
        (*x)->del_cb = cb;
        (*x)->del_payload = payload;
    }
    return rc;
}

int mf__s3xml_delete_parse(mf__s3xml_delete *out, const void *data, size_t len,
                           mf__s3xml_delete_cb cb, void *payload)
{
    mf__s3xml *x;
    int rc = mf__s3xml_delete_new(&x, out, cb, payload);
    return rc != MF_OK ? rc : run(x, data, len);
}

/* ---- request bodies */

/* The length of the character at s[0..n) when it is UTF-8 and an XML 1.0
 * Char; else 0, with *cp the code point (UINT32_MAX: not UTF-8). */
static size_t xml_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    *cp = c;
    if (c < 0x80)
        return c >= 0x20 || c == '\t' || c == '\n' || c == '\r' ? 1 : 0;
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1Fu, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07u, min = 0x10000;
    } else {
        *cp = UINT32_MAX;
        return 0;
    }
    *cp = UINT32_MAX;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0; /* overlong, out of range, a surrogate: not UTF-8 */
    *cp = v;
    return v == 0xFFFE || v == 0xFFFF ? 0 : len;
}

/* Offset of the first character XML 1.0 cannot carry, or `len`. */
static size_t first_bad(const char *s, size_t len, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = xml_char(u + i, len - i, cp);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

bool mf__s3xml_representable(const char *s, size_t len)
{
    uint32_t cp;
    return first_bad(s, len, &cp) == len;
}

/* "<what>: byte N is not UTF-8" / "...: U+0001 at byte N, which XML 1.0
 * cannot carry" - never the text itself, which may be unprintable. */
static int unrepresentable(const char *what, size_t off, uint32_t cp)
{
    if (cp == UINT32_MAX)
        return mf__error_set(MF_EINVAL, "%s: byte %zu is not UTF-8", what, off);
    return mf__error_set(MF_EINVAL, "%s: U+%04X at byte %zu, which XML 1.0 cannot carry",
                         what, (unsigned)cp, off);
}

static int escape(mf_buf *out, const char *s, size_t len)
{
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < len; i++) {
        const char *rep;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        case '\t': rep = "&#9;"; break;
        case '\n': rep = "&#10;"; break;
        case '\r': rep = "&#13;"; break;
        default: run++; continue;
        }
        int rc = mf__buf_put(out, s + i - run, run);
        if (rc == MF_OK)
            rc = mf__buf_puts(out, rep);
        if (rc != MF_OK)
            return rc;
        run = 0;
    }
    return mf__buf_put(out, s + len - run, run);
}

int mf__s3xml_escape_append(mf_buf *out, const char *s, size_t len)
{
    uint32_t cp;
    size_t bad = first_bad(s, len, &cp);
    if (bad != len)
        return unrepresentable("XML text", bad, cp);
    return escape(out, s, len);
}

int mf__s3xml_complete_body(mf_buf *out, const mf__s3xml_part *parts, size_t n)
{
    if (n == 0 || n > 10000)
        return mf__error_set(MF_EINVAL, "CompleteMultipartUpload body: %zu parts (1 to 10000)",
                             n);
    for (size_t i = 0; i < n; i++) {
        uint32_t num = parts[i].number;
        if (num < 1 || num > 10000)
            return mf__error_set(MF_EINVAL, "CompleteMultipartUpload body: part number %u "
                                 "(1 to 10000)", (unsigned)num);
        if (i > 0 && num <= parts[i - 1].number)
            return mf__error_set(MF_EINVAL, "CompleteMultipartUpload body: part %u after "
                                 "part %u (S3 wants them in increasing order)",
                                 (unsigned)num, (unsigned)parts[i - 1].number);
        const char *etag = parts[i].etag;
        if (!etag || !etag[0])
            return mf__error_set(MF_EINVAL, "CompleteMultipartUpload body: part %u has no "
                                 "ETag", (unsigned)num);
        uint32_t cp;
        size_t len = strlen(etag), bad = first_bad(etag, len, &cp);
        if (bad != len) {
            char what[96];
            snprintf(what, sizeof what, "CompleteMultipartUpload body: the ETag of part %u",
                     (unsigned)num);
            return unrepresentable(what, bad, cp);
        }
    }
    mf__buf_clear(out);
    int rc = mf__buf_puts(out, "<CompleteMultipartUpload xmlns=\"" S3_NS "\">");
    for (size_t i = 0; i < n && rc == MF_OK; i++) {
        rc = mf__buf_printf(out, "<Part><PartNumber>%u</PartNumber><ETag>",
                            (unsigned)parts[i].number);
        if (rc == MF_OK)
            rc = escape(out, parts[i].etag, strlen(parts[i].etag));
        if (rc == MF_OK)
            rc = mf__buf_puts(out, "</ETag></Part>");
    }
    if (rc == MF_OK)
        rc = mf__buf_puts(out, "</CompleteMultipartUpload>");
    return rc;
}

int mf__s3xml_delete_body(mf_buf *out, const char *const *keys, size_t n, bool quiet)
{
    if (n == 0 || n > MF__S3XML_DELETE_MAX)
        return mf__error_set(MF_EINVAL, "DeleteObjects body: %zu keys (1 to %d)", n,
                             MF__S3XML_DELETE_MAX);
    for (size_t i = 0; i < n; i++) {
        if (!keys[i] || !keys[i][0])
            return mf__error_set(MF_EINVAL, "DeleteObjects body: key #%zu is empty", i);
        uint32_t cp;
        size_t len = strlen(keys[i]), bad = first_bad(keys[i], len, &cp);
        if (bad != len) {
            char what[64];
            snprintf(what, sizeof what, "DeleteObjects body: key #%zu", i);
            return unrepresentable(what, bad, cp);
        }
    }
    mf__buf_clear(out);
    int rc = mf__buf_puts(out, quiet ? "<Delete xmlns=\"" S3_NS "\"><Quiet>true</Quiet>"
                                     : "<Delete xmlns=\"" S3_NS "\">");
    for (size_t i = 0; i < n && rc == MF_OK; i++) {
        rc = mf__buf_puts(out, "<Object><Key>");
        if (rc == MF_OK)
            rc = escape(out, keys[i], strlen(keys[i]));
        if (rc == MF_OK)
            rc = mf__buf_puts(out, "</Key></Object>");
    }
    if (rc == MF_OK)
        rc = mf__buf_puts(out, "</Delete>");
    return rc;
}
