/*
 * Fuzz target: the S3 XML parsers and escaper (lib/datastore/s3/xml.c).
 *
 * Each input goes to every parser (the listing with and without URL
 * decoding), whole and then fed in pieces whose size comes from the input:
 * both must agree on the result code and on everything reported. The input
 * is also escaped for XML, and what escapes must read back through expat
 * as the same bytes; URL decoding and time parsing must simply survive.
 */
#include <expat.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "datastore/s3/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int allowed(int rc)
{
    return rc == MF_OK || rc == MF_ECORRUPT || rc == MF_EIO || rc == MF_ENOMEM;
}

/* ---- what each parser reports, as text, to compare two runs */

static int log_object(const mf__s3xml_object *o, void *payload)
{
    mf__buf_printf(payload, "O%s|%llu|%lld|%s\n", o->key, (unsigned long long)o->size,
                   (long long)o->mtime, o->etag);
    if (strlen(o->key) != o->key_len || o->key_len == 0)
        abort();
    return 0;
}

static int log_plain(const char *key, uint64_t size, int64_t mtime, void *payload)
{
    (void)size, (void)mtime;
    mf__buf_printf(payload, "K%s\n", key);
    return 0;
}

static int log_prefix(const char *prefix, void *payload)
{
    mf__buf_printf(payload, "P%s\n", prefix);
    return 0;
}

static int log_deleted(const char *key, const char *code, const char *msg, void *payload)
{
    mf__buf_printf(payload, "D%s|%s|%s\n", key, code ? code : "-", msg ? msg : "-");
    return 0;
}

static void log_error(mf_buf *log, const mf__s3xml_error *e)
{
    mf__buf_printf(log, "E%s|%s|%s|%s|%s\n", e->code, e->message, e->request_id, e->host_id,
                   e->resource);
}

/* Run document kind `kind` over the input in pieces of `piece` bytes (0:
 * whole, through the *_parse() call); the result code and the log out. */
static int run(int kind, const uint8_t *data, size_t size, size_t piece, mf_buf *log)
{
    mf__s3xml *x = NULL;
    mf__s3xml_listing list = MF__S3XML_LISTING_INIT;
    mf__s3xml_error err;
    mf__s3xml_initiate ini;
    mf__s3xml_complete comp;
    mf__s3xml_delete del;
    mf__s3xml_list_cbs cbs = { log_plain, log_object, log_prefix, log };
    uint32_t flags = kind == 1 ? MF__S3XML_URL : 0;
    int rc;

    mf__buf_clear(log);
    if (piece == 0) {
        switch (kind) {
        case 0: case 1: rc = mf__s3xml_list_parse(&list, data, size, flags, &cbs); break;
        case 2: rc = mf__s3xml_error_parse(&err, data, size); break;
        case 3: rc = mf__s3xml_initiate_parse(&ini, data, size); break;
        case 4: rc = mf__s3xml_complete_parse(&comp, data, size); break;
        default: rc = mf__s3xml_delete_parse(&del, data, size, log_deleted, log); break;
        }
    } else {
        switch (kind) {
        case 0: case 1: rc = mf__s3xml_list_new(&x, &list, flags, &cbs); break;
        case 2: rc = mf__s3xml_error_new(&x, &err); break;
        case 3: rc = mf__s3xml_initiate_new(&x, &ini); break;
        case 4: rc = mf__s3xml_complete_new(&x, &comp); break;
        default: rc = mf__s3xml_delete_new(&x, &del, log_deleted, log); break;
        }
        for (size_t off = 0; rc == MF_OK && off < size; off += piece)
            rc = mf__s3xml_feed(x, data + off, size - off < piece ? size - off : piece);
        if (rc == MF_OK)
            rc = mf__s3xml_finish(x);
        mf__s3xml_free(x);
    }
    if (!allowed(rc))
        abort();
    if (rc == MF_OK) {
        switch (kind) {
        case 0: case 1:
            if (list.is_truncated && list.next_token.size == 0)
                abort();
            mf__buf_printf(log, "T%d|%s|%llu|%llu\n", list.is_truncated,
                           list.next_token.ptr ? list.next_token.ptr : "",
                           (unsigned long long)list.objects, (unsigned long long)list.prefixes);
            break;
        case 2:
            if (!err.code[0])
                abort();
            log_error(log, &err);
            break;
        case 3:
            if (!ini.upload_id[0])
                abort();
            mf__buf_printf(log, "U%s\n", ini.upload_id);
            break;
        case 4:
            if (comp.failed ? !comp.error.code[0] : !comp.etag[0])
                abort();
            mf__buf_printf(log, "C%d|%s\n", comp.failed, comp.etag);
            log_error(log, &comp.error);
            break;
        default:
            mf__buf_printf(log, "N%llu|%llu\n", (unsigned long long)del.deleted,
                           (unsigned long long)del.errors);
            break;
        }
    }
    mf__s3xml_listing_dispose(&list);
    return rc;
}

/* ---- escaping reads back through expat as the same bytes */

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    mf__buf_put(ud, s, (size_t)len);
}

static void check_escape(const uint8_t *data, size_t size)
{
    mf_buf doc = MF_BUF_INIT, back = MF_BUF_INIT;
    mf__buf_puts(&doc, "<k>");
    int rc = mf__s3xml_escape_append(&doc, (const char *)data, size);
    if ((rc == MF_OK) != mf__s3xml_representable((const char *)data, size))
        abort();
    if (rc == MF_OK) {
        mf__buf_puts(&doc, "</k>");
        XML_Parser p = XML_ParserCreate("UTF-8");
        if (!p)
            abort();
        XML_SetUserData(p, &back);
        XML_SetCharacterDataHandler(p, on_text);
        if (XML_Parse(p, doc.ptr, (int)doc.size, XML_TRUE) != XML_STATUS_OK ||
            back.size != size || (size && memcmp(back.ptr, data, size) != 0))
            abort();
        XML_ParserFree(p);
    } else if (rc != MF_EINVAL && rc != MF_ENOMEM) {
        abort();
    }
    mf_buf_dispose(&doc);
    mf_buf_dispose(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20) /* big inputs only slow the search down */
        return 0;
    mf_buf a = MF_BUF_INIT, b = MF_BUF_INIT;
    size_t piece = size ? 1 + data[size - 1] % 13 : 1;
    for (int kind = 0; kind < 6; kind++) {
        int rc = run(kind, data, size, 0, &a);
        if (run(kind, data, size, piece, &b) != rc || a.size != b.size ||
            (a.size && memcmp(a.ptr, b.ptr, a.size) != 0))
            abort();
    }
    mf_buf_dispose(&a);
    mf_buf_dispose(&b);

    check_escape(data, size);
    mf_buf dec = MF_BUF_INIT;
    if (mf__s3xml_url_decode(&dec, (const char *)data, size) == MF_OK &&
        (dec.size > size || strlen(dec.ptr) != dec.size))
        abort();
    mf_buf_dispose(&dec);
    int64_t t;
    if (mf__s3xml_parse_time((const char *)data, size, &t) &&
        (t < INT64_C(-62167219200) || t > INT64_C(253402300800)))
        abort();
    return 0;
}
