/*
 * Internal core utilities shared by every subsystem: error state, buffers,
 * string lists, name rules, hashing, time, msgpack bounds checking.
 * Nothing here is exported.
 */
#ifndef MF_CORE_H
#define MF_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metaflow.h"

#if defined(__GNUC__)
#  define MF__PRINTF(a, b) __attribute__((format(printf, a, b)))
#  define MF__UNUSED __attribute__((unused))
#else
#  define MF__PRINTF(a, b)
#  define MF__UNUSED
#endif

/* ---- errors (lib/core/error.c) */

/* Set the thread's error and return `code`. The message should name the
 * thing at fault. */
int mf__error_set(int code, const char *fmt, ...) MF__PRINTF(2, 3);
int mf__error_vset(int code, const char *fmt, va_list ap);
/* Prefix the current message with "<prefix>: " keeping the code; returns it. */
int mf__error_wrap(const char *fmt, ...) MF__PRINTF(1, 2);
/* MF_ENOMEM with a fixed message (never allocates). */
int mf__error_oom(void);
/* Change the current error's code, keeping its message; returns `code`. */
int mf__error_recode(int code);
/* errno-based I/O error: "<what> '<path>': strerror(errno)"; maps ENOENT to
 * MF_ENOTFOUND, EEXIST to MF_EEXISTS, ENOMEM to MF_ENOMEM, else MF_EIO. */
int mf__error_errno(int err, const char *what, const char *path);

/* ---- buffers (lib/core/buf.c) */

int mf__buf_grow(mf_buf *buf, size_t need);           /* capacity >= need + 1 */
int mf__buf_set(mf_buf *buf, const void *data, size_t len);
int mf__buf_put(mf_buf *buf, const void *data, size_t len); /* append */
int mf__buf_puts(mf_buf *buf, const char *s);
int mf__buf_printf(mf_buf *buf, const char *fmt, ...) MF__PRINTF(2, 3);
void mf__buf_clear(mf_buf *buf);                      /* size = 0, keep memory */
/* Take the bytes out of `buf` (caller frees with free()), resetting it. */
char *mf__buf_detach(mf_buf *buf, size_t *len);

/* ---- string lists (lib/core/strlist.c) */

mf_strlist *mf__strlist_new(void);
int mf__strlist_push(mf_strlist *list, const char *s);
int mf__strlist_pushn(mf_strlist *list, const char *s, size_t len);
void mf__strlist_sort(mf_strlist *list);
void mf__strlist_uniq(mf_strlist *list);  /* after sort: drop repeats */
bool mf__strlist_contains(const mf_strlist *list, const char *s);
/* Free the first `n` strings of `v`, then `v`; NULL `v` is a no-op. */
void mf__strvec_free(char **v, size_t n);
/* Sort an array of strings; then drop (and free) repeats of a sorted one,
 * returning the new count. */
void mf__strvec_sort(char **v, size_t n);
size_t mf__strvec_uniq(char **v, size_t n);

/* ---- names (lib/core/names.c); each returns MF_OK or MF_EINVAL with a
 * message that names `what` and the value. */

int mf__check_flow_name(const char *name);     /* [A-Za-z][A-Za-z0-9_]*, <= 255, not "data" */
int mf__check_step_name(const char *name);     /* [a-z0-9_]+, no leading '_', not reserved */
int mf__check_artifact_name(const char *name); /* [A-Za-z_][A-Za-z0-9_]*, <= 255 */
int mf__check_id(const char *what, const char *id); /* run/task ids: [A-Za-z0-9_.-]+, <= 128, no leading '.' */
int mf__check_id_max(const char *what, const char *id, size_t max); /* the same, <= max */
int mf__check_tag(const char *tag);            /* 1..1024 bytes, no NUL/control chars */
bool mf__step_name_reserved(const char *name);

/* ---- hashing (lib/core/hash.c) */

#define MF_SHA256_LEN 32
#define MF_SHA256_HEX 64
int mf__sha256(const void *data, size_t len, uint8_t out[MF_SHA256_LEN]);
/* Load the digest once up front (engine open), so no later call pays it. */
void mf__sha256_warm(void);
/* Streaming SHA-256 (OpenSSL EVP underneath). */
typedef struct mf__sha256_ctx mf__sha256_ctx;
mf__sha256_ctx *mf__sha256_begin(void);
int mf__sha256_update(mf__sha256_ctx *ctx, const void *data, size_t len);
int mf__sha256_end(mf__sha256_ctx *ctx, uint8_t out[MF_SHA256_LEN]); /* frees ctx */
void mf__sha256_abort(mf__sha256_ctx *ctx);
void mf__hex(const uint8_t *bytes, size_t n, char *out);  /* writes 2n chars + NUL */
int mf__unhex(const char *hex, uint8_t *out, size_t n);   /* exactly 2n lowercase hex chars */
/* XXH64 (the published algorithm), used as the fast blob checksum. */
uint64_t mf__xxh64(const void *data, size_t len, uint64_t seed);

/* ---- secrets (lib/core/secret.c)
 *
 * A copy of s[0..n) and a NUL in its own anonymous mapping, marked
 * MADV_DONTDUMP so that a core dump of the process leaves it out; for
 * credentials held for the life of a datastore. NULL when out of memory
 * (no error is set). mf__secret_free wipes and unmaps it; NULL is fine.
 * Only for a few long-lived strings: each takes at least a page. */
char *mf__secret_dup(const char *s, size_t n);
void mf__secret_free(char *p);

/* ---- time (lib/core/util.c) */

/* getenv(), with an empty value counted as unset (NULL). */
const char *mf__getenv(const char *name);
int64_t mf__now_us(void);   /* wall clock, microseconds since the epoch */
int64_t mf__mono_us(void);  /* monotonic */
/* An ISO 8601 date-time, `len` bytes (no NUL needed), to Unix seconds:
 * "YYYY-MM-DDTHH:MM:SS", an optional fraction ('.' and digits, dropped),
 * then "Z". With MF__ISO_ZONES the zone may also be "UTC", "+HH:MM",
 * "+HHMM" (or '-') or absent (UTC). The date must exist (leap years are
 * checked); second 60 (a leap second) counts as the next minute's :00.
 * False for anything else. */
#define MF__ISO_ZONES 0x1u
bool mf__iso8601_parse(const char *s, size_t len, unsigned flags, int64_t *out);
/* mkdir -p (mode 0777 less the umask); an existing directory is fine.
 * MF_OK, or an error naming the directory that could not be made. */
int mf__mkdir_p(const char *path);

/* ---- msgpack safety (lib/core/mpcheck.c)
 *
 * msgpack-c's unpacker trusts declared lengths (a 7-byte map32 header makes
 * it allocate ~17 GB), so every decoder first walks the bytes with
 * mf__mp_check(): it succeeds only when `data` holds exactly one complete
 * object whose every declared string/bin/ext length fits in the bytes left
 * and whose every array/map count is at most the bytes left (each element
 * needs at least one byte), nested at most `max_depth` deep. `what` names
 * the object in the MF_ECORRUPT message. */
int mf__mp_check(const void *data, size_t len, unsigned max_depth, const char *what);

#endif /* MF_CORE_H */
