/*
 * Internal: the XML of the S3 REST API, for the S3 datastore. Nothing here
 * is exported.
 *
 * Parsers (expat underneath) for the responses the backend reads -
 * ListObjectsV2, Error, InitiateMultipartUpload, CompleteMultipartUpload,
 * DeleteObjects - and builders for the two request bodies it sends.
 *
 * Streaming: create a parser for the document expected, feed it the body
 * as it arrives (any split, down to a byte at a time, gives the same
 * result), then finish it. A listing reports each object through a
 * callback as soon as its </Contents> is read, so no page is ever held
 * whole. The *_parse() functions do all three steps over a whole body.
 *
 * Safety: the input is untrusted. A DOCTYPE (hence any entity declaration,
 * internal or external) is refused as soon as it starts, so no entity is
 * ever expanded; elements nest at most MF__S3XML_DEPTH_MAX deep; the text
 * kept of any element is capped (keys and tokens MF__S3XML_KEY_MAX,
 * messages MF__S3XML_MESSAGE_MAX, short fields less), text of elements
 * that are not read is never kept, and a document is at most
 * MF__S3XML_DOC_MAX bytes. Anything malformed, over a cap or missing a
 * required element is MF_ECORRUPT with a message that names the document
 * ("ListObjectsV2 response"), the place (line, column) and what was wrong.
 * Unknown elements and attributes are ignored (S3 keeps adding them), and
 * namespaces are not checked.
 *
 * Whitespace before the document is skipped: CompleteMultipartUpload sends
 * its 200 header at once, then spaces to keep the connection open while it
 * works, then the XML - which expat would otherwise refuse ("XML
 * declaration not at start").
 *
 * Threading: no shared state; a parser is used by one thread at a time.
 * Errors are reported through the calling thread's error state.
 */
#ifndef MF_DATASTORE_S3_XML_H
#define MF_DATASTORE_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Bounds. A key is at most 1024 bytes in S3; URL-encoded or XML-escaped it
 * can grow up to six times, so 64 KiB leaves room for S3-compatible stores
 * with longer keys without letting one element take unbounded memory. */
#define MF__S3XML_DEPTH_MAX 32
#define MF__S3XML_KEY_MAX (64u * 1024u)
#define MF__S3XML_MESSAGE_MAX (1024u * 1024u)
#define MF__S3XML_DOC_MAX (64u * 1024u * 1024u)

/* A streaming parser for one document; see the *_new() functions. */
typedef struct mf__s3xml mf__s3xml;

/*
 * Feed the next `len` bytes of the body. MF_OK; MF_ECORRUPT (the message
 * says what and where); MF_EUSER (a callback returned non-zero); MF_EIO (a
 * document that is an S3 <Error> where another was expected - the message
 * holds S3's code and message); MF_ENOMEM; MF_ESTATE after finish. After
 * a failure every later call fails the same way.
 */
int mf__s3xml_feed(mf__s3xml *x, const void *data, size_t len);

/*
 * The body has ended: check that the document is complete and has every
 * required element. Only after MF_OK is the result filled in (callbacks may
 * have reported objects of a document that then failed: discard them).
 * The same codes as mf__s3xml_feed().
 */
int mf__s3xml_finish(mf__s3xml *x);

/* Free the parser (not the result it fills). Accepts NULL. */
void mf__s3xml_free(mf__s3xml *x);

/* ---- S3 error documents: <Error><Code/><Message/>...</Error> */

#define MF__S3XML_CODE_MAX 128
#define MF__S3XML_TEXT_MAX 1024
#define MF__S3XML_ID_MAX 256

/* Every field is NUL-terminated, "" when absent. `code` is never cut (a
 * longer code is MF_ECORRUPT); the others are cut to fit at a UTF-8
 * character boundary, ending in "..." when cut. */
typedef struct mf__s3xml_error {
    char code[MF__S3XML_CODE_MAX];       /* "NoSuchKey"; never "" after MF_OK */
    char message[MF__S3XML_TEXT_MAX];
    char request_id[MF__S3XML_ID_MAX];
    char host_id[MF__S3XML_ID_MAX];
    char resource[MF__S3XML_TEXT_MAX];
} mf__s3xml_error;

/* Parse an S3 error document (the body of a non-2xx response) into `out`,
 * which must stay valid while the parser lives. */
int mf__s3xml_error_new(mf__s3xml **x, mf__s3xml_error *out);
int mf__s3xml_error_parse(mf__s3xml_error *out, const void *data, size_t len);

/* ---- ListObjectsV2
 *
 * Encoding: with `encoding-type=url` in the request S3 URL-encodes
 * Contents/Key and CommonPrefixes/Prefix (also Prefix, Delimiter and
 * StartAfter, which are not read here) the way HTML forms do: a space
 * comes as '+', a '+' as "%2B", other bytes as %XX (measured on AWS: "a
 * b.txt" lists as "a+b.txt", "a+b.txt" as "a%2Bb.txt"; moto and MinIO send
 * "%20" for a space, which decodes the same). So '+' decodes to a space,
 * as botocore does (unquote_plus). Pass MF__S3XML_URL when the request
 * asked for it: keys are then decoded, and a response that does not say
 * <EncodingType>url</EncodingType> (a server that ignored the parameter,
 * whose keys would be decoded wrongly) is MF_ECORRUPT - as is one that
 * says so when the request did not ask. Without encoding, S3 sends keys
 * as they are, which XML 1.0 cannot carry when they hold control
 * characters (a server that does sends a malformed document). */
#define MF__S3XML_URL 0x1u

/* One object: the shape of the datastore's listing callback
 * (mf_ds_list_cb), so the backend can pass that straight through. `key`
 * is decoded and valid during the call only; `mtime` is LastModified in
 * seconds since the epoch. Return 0 to go on, non-zero to stop (the parse
 * then returns MF_EUSER). */
typedef int (*mf__s3xml_object_cb)(const char *key, uint64_t size, int64_t mtime,
                                   void *payload);

/* The same object with the fields the datastore callback has no room for. */
typedef struct mf__s3xml_object {
    const char *key;  /* decoded; NUL-terminated; never "" */
    size_t key_len;
    uint64_t size;
    int64_t mtime;
    const char *etag; /* as sent, quotes included ("\"9a0364...\""); "" when absent */
} mf__s3xml_object;

typedef struct mf__s3xml_list_cbs {
    mf__s3xml_object_cb object;                                 /* may be NULL */
    /* Called after `object` for the same object; may be NULL. */
    int (*object_detail)(const mf__s3xml_object *obj, void *payload);
    /* Each CommonPrefixes/Prefix (decoded; valid during the call); may be NULL. */
    int (*prefix)(const char *prefix, void *payload);
    void *payload;
} mf__s3xml_list_cbs;

/* What a page says besides its objects. Initialise with
 * MF__S3XML_LISTING_INIT, release with mf__s3xml_listing_dispose(). */
typedef struct mf__s3xml_listing {
    bool is_truncated;
    /* NextContinuationToken, opaque and never encoded; size 0 when absent.
     * Present whenever is_truncated (else the page is MF_ECORRUPT). */
    mf_buf next_token;
    bool has_key_count;
    uint64_t key_count; /* KeyCount as sent; S3 counts objects and prefixes */
    uint64_t objects;   /* Contents elements reported */
    uint64_t prefixes;  /* CommonPrefixes elements reported */
} mf__s3xml_listing;

#define MF__S3XML_LISTING_INIT { false, MF_BUF_INIT, false, 0, 0, 0 }

void mf__s3xml_listing_dispose(mf__s3xml_listing *l);

/* Parse a ListObjectsV2 page. `out` (reset here) must stay valid while the
 * parser lives; `cbs` is copied and may be NULL. Required: the root
 * <ListBucketResult>, IsTruncated, and in each Contents a non-empty Key,
 * Size and LastModified. */
int mf__s3xml_list_new(mf__s3xml **x, mf__s3xml_listing *out, uint32_t flags,
                       const mf__s3xml_list_cbs *cbs);
int mf__s3xml_list_parse(mf__s3xml_listing *out, const void *data, size_t len,
                         uint32_t flags, const mf__s3xml_list_cbs *cbs);

/* ---- multipart upload */

#define MF__S3XML_UPLOAD_ID_MAX 1024
#define MF__S3XML_ETAG_MAX 256

typedef struct mf__s3xml_initiate {
    char upload_id[MF__S3XML_UPLOAD_ID_MAX]; /* never "" after MF_OK */
} mf__s3xml_initiate;

int mf__s3xml_initiate_new(mf__s3xml **x, mf__s3xml_initiate *out);
int mf__s3xml_initiate_parse(mf__s3xml_initiate *out, const void *data, size_t len);

/* CompleteMultipartUpload answers 200 and only then does the work, so a
 * failure comes as a 200 whose body is an <Error> (AWS: "check the
 * response body to determine whether the request succeeded"). The parse
 * returns MF_OK for both; `failed` tells them apart. The root
 * <CompleteMultipartUploadResponse> is accepted too: moto sends it. */
typedef struct mf__s3xml_complete {
    bool failed;                   /* the body was an <Error>: see `error` */
    char etag[MF__S3XML_ETAG_MAX]; /* quotes included; never "" after MF_OK unless failed */
    mf__s3xml_error error;
} mf__s3xml_complete;

int mf__s3xml_complete_new(mf__s3xml **x, mf__s3xml_complete *out);
int mf__s3xml_complete_parse(mf__s3xml_complete *out, const void *data, size_t len);

/* ---- DeleteObjects result */

/* One entry: `code` is NULL for a <Deleted> key, S3's code ("AccessDenied")
 * for an <Error> one, with its `message` ("" when absent). All valid during
 * the call only. Return non-zero to stop (MF_EUSER). */
typedef int (*mf__s3xml_delete_cb)(const char *key, const char *code, const char *message,
                                   void *payload);

typedef struct mf__s3xml_delete {
    uint64_t deleted; /* <Deleted> entries (none in quiet mode) */
    uint64_t errors;  /* <Error> entries */
} mf__s3xml_delete;

/* `cb` may be NULL (counts only). Keys are never URL-encoded here. */
int mf__s3xml_delete_new(mf__s3xml **x, mf__s3xml_delete *out, mf__s3xml_delete_cb cb,
                         void *payload);
int mf__s3xml_delete_parse(mf__s3xml_delete *out, const void *data, size_t len,
                           mf__s3xml_delete_cb cb, void *payload);

/* ---- request bodies
 *
 * XML 1.0 cannot carry every key: U+0000, the C0 controls other than tab,
 * LF and CR, and U+FFFE/U+FFFF are not XML characters, not even as
 * character references. Such keys (and bytes that are not UTF-8, which
 * S3 keys never are) make a body MF_EINVAL; the backend deletes those one
 * at a time with DeleteObject, which puts the key in the URL (as
 * minio-go does). Tab, LF and CR are sent as &#9; &#10; &#13; - literal
 * ones would reach S3 as LF after XML's line-end normalisation - and
 * & < > " ' as &amp; &lt; &gt; &quot; &apos;. */

/* Whether `s[0..len)` can be sent in an XML 1.0 body. */
bool mf__s3xml_representable(const char *s, size_t len);

/* Append `s[0..len)` escaped for XML text. MF_OK, MF_EINVAL (not
 * representable; the message gives the byte offset and character, never
 * the text), MF_ENOMEM. */
int mf__s3xml_escape_append(mf_buf *out, const char *s, size_t len);

typedef struct mf__s3xml_part {
    uint32_t number;  /* 1..10000, strictly increasing along the array */
    const char *etag; /* as UploadPart returned it, quotes included */
} mf__s3xml_part;

/* The CompleteMultipartUpload body for `parts[0..n)`, replacing `out`'s
 * contents. MF_OK; MF_EINVAL (n is 0 or over 10000, a number out of range
 * or out of order, an empty or unrepresentable ETag); MF_ENOMEM. */
int mf__s3xml_complete_body(mf_buf *out, const mf__s3xml_part *parts, size_t n);

/* At most this many keys per DeleteObjects request (an S3 limit). */
#define MF__S3XML_DELETE_MAX 1000

/* The DeleteObjects body for `keys[0..n)`, replacing `out`'s contents;
 * `quiet` asks S3 to report only the keys it failed to delete. MF_OK;
 * MF_EINVAL (n is 0 or over MF__S3XML_DELETE_MAX, an empty or
 * unrepresentable key - the message gives its index); MF_ENOMEM. */
int mf__s3xml_delete_body(mf_buf *out, const char *const *keys, size_t n, bool quiet);

/* ---- helpers, exposed for the backend and the tests */

/* Decode `s[0..len)` as S3's URL encoding ('+' is a space, %XX a byte),
 * replacing `out`'s contents (NUL-terminated, and holding no other NUL).
 * MF_OK; MF_ECORRUPT (a '%' not followed by two hex digits, or a NUL byte,
 * raw or as %00 - which no key can hold); MF_ENOMEM. */
int mf__s3xml_url_decode(mf_buf *out, const char *s, size_t len);

/* ISO 8601 as S3 writes it, "2024-01-02T03:04:05.000Z" (fraction optional,
 * any number of digits, dropped; 'Z' required) to seconds since the epoch.
 * False when `s[0..len)` is not such a time or not a real date. */
bool mf__s3xml_parse_time(const char *s, size_t len, int64_t *out);

#endif /* MF_DATASTORE_S3_XML_H */
