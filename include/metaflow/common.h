/*
 * libmetaflow - common definitions: export macro, versions, error codes,
 * caller-owned byte buffers.
 *
 * Threading: everything in this header is thread-safe. Error state is per
 * thread.
 *
 * Every declaration here is @since 0.1 unless its comment says otherwise.
 */
#ifndef METAFLOW_COMMON_H
#define METAFLOW_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @cond INTERNAL */
#if defined(_WIN32)
#  define MF_EXTERN(type) __declspec(dllexport) type
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define MF_EXTERN(type) __attribute__((visibility("default"))) type
#else
#  define MF_EXTERN(type) type
#endif
/** @endcond */

/** Compile-time version of the headers. */
#define MF_VERSION_MAJOR 0
#define MF_VERSION_MINOR 1
#define MF_VERSION_PATCH 0
#define MF_VERSION_STRING "0.1.0"
/** MAJOR * 10000 + MINOR * 100 + PATCH */
#define MF_VERSION_NUMBER \
    (MF_VERSION_MAJOR * 10000 + MF_VERSION_MINOR * 100 + MF_VERSION_PATCH)

/**
 * Run-time version of the library, as MF_VERSION_NUMBER.
 * @since 0.1
 */
MF_EXTERN(uint32_t) mf_version(void);

/**
 * Run-time version of the library as a static string ("0.1.0").
 * @since 0.1
 */
MF_EXTERN(const char *) mf_version_string(void);

/**
 * Error codes. Every function that can fail returns an int: MF_OK (0) or one
 * of these negative values. Values are pinned: never renumbered, never
 * reused.
 */
typedef enum mf_error_code {
    MF_OK = 0,
    MF_ERROR = -1,      /**< generic failure (should not happen; a bug) */
    MF_EINVAL = -2,     /**< invalid argument or name */
    MF_ENOTFOUND = -3,  /**< the named object does not exist */
    MF_EEXISTS = -4,    /**< the named object already exists */
    MF_EIO = -5,        /**< I/O error (disk full, permission, network) */
    MF_ECORRUPT = -6,   /**< stored data failed an integrity check */
    MF_ENOMEM = -7,     /**< out of memory */
    MF_EVERSION = -8,   /**< unknown struct, vtable or format version */
    MF_EBUSY = -9,      /**< resource locked by someone else */
    MF_ETIMEOUT = -10,  /**< deadline passed */
    MF_EUSER = -11,     /**< a user callback asked to stop */
    MF_EGRAPH = -12,    /**< the flow graph is invalid */
    MF_ENOTSUP = -13,   /**< operation not supported by this backend */
    MF_ESTATE = -14,    /**< object is in the wrong state for the call */
    MF_ERANGE = -15,    /**< offset or length out of range */
    MF_ENOSPACE = -16,  /**< the index map cannot grow further */
    MF_EFAILED = -17,   /**< a run or task failed (the message says where and why) */
    MF_EACCESS = -18    /**< credentials missing, rejected or not allowed (@since 0.1) */
    /* next: -18. Never reuse a value. */
} mf_error_code;

/**
 * Static description of an error code ("not found"). Never NULL.
 * @since 0.1
 */
MF_EXTERN(const char *) mf_strerror(int code);

/**
 * The last error of the calling thread.
 *
 * @return the message of the last failure on this thread, naming the thing
 * at fault ("artifact 'model' of task 'Flow/1/train/3': blob checksum
 * mismatch"). Never NULL: "no error" when there is none.
 * @note Borrowed; valid until the next libmetaflow call on this thread.
 * @since 0.1
 */
MF_EXTERN(const char *) mf_error_last(void);

/**
 * The code of the last error on the calling thread (MF_OK if none).
 * @since 0.1
 */
MF_EXTERN(int) mf_error_last_code(void);

/** Clear the calling thread's error state. @since 0.1 */
MF_EXTERN(void) mf_error_clear(void);

/**
 * A caller-owned byte buffer. Initialise with MF_BUF_INIT, release with
 * mf_buf_dispose(). Functions that fill an mf_buf replace its contents.
 * `ptr` is NUL-terminated past `size` for convenience (the NUL is not
 * counted).
 */
typedef struct mf_buf {
    char *ptr;       /**< the bytes; NULL when empty */
    size_t reserved; /**< allocated size; 0 when the buffer is borrowed */
    size_t size;     /**< number of valid bytes */
} mf_buf;

#define MF_BUF_INIT { NULL, 0, 0 }

/**
 * Free the memory held by a buffer and reset it to MF_BUF_INIT.
 * Accepts NULL and an already-disposed buffer.
 * @since 0.1
 */
MF_EXTERN(void) mf_buf_dispose(mf_buf *buf);

/**
 * A datastore backend. Only named here; backend authors get its vtable
 * from metaflow/sys/datastore.h.
 */
typedef struct mf_datastore mf_datastore;

/**
 * A list of strings returned by queries. Free with mf_strlist_free().
 */
typedef struct mf_strlist mf_strlist;

/** Number of strings in the list (0 for NULL). @since 0.1 */
MF_EXTERN(size_t) mf_strlist_count(const mf_strlist *list);

/**
 * The i-th string, or NULL when i is out of range.
 * @note Borrowed; valid until mf_strlist_free().
 * @since 0.1
 */
MF_EXTERN(const char *) mf_strlist_get(const mf_strlist *list, size_t i);

/** Free a list; accepts NULL. @since 0.1 */
MF_EXTERN(void) mf_strlist_free(mf_strlist *list);

#ifdef __cplusplus
}
#endif

#endif /* METAFLOW_COMMON_H */
