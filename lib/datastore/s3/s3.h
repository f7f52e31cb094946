/*
 * Internal: the S3 datastore backend ("s3"), over libcurl's multi
 * interface with SigV4 signing (sigv4.c), expat parsing of S3's XML
 * (xml.c) and AWS configuration resolved like the SDKs (config.c,
 * creds.c). Nothing here is exported; hosts reach it through
 * mf_datastore_open("s3", "s3://bucket/prefix") and the engine options.
 *
 * Settings, read once when a datastore is opened (docs/s3.md):
 *   endpoint, region, credentials   as the AWS SDKs (config.h), plus
 *                                   METAFLOW_S3_ENDPOINT_URL (Metaflow's)
 *   AWS_CA_BUNDLE                   the CA file for TLS verification
 *   MF_S3_MAX_PARALLEL              transfers in flight per datastore (16)
 *   MF_S3_MAX_BANDWIDTH             bytes/s each way, with K/M/G (none)
 *   MF_S3_RETRIES                   retries per request (7; also
 *                                   METAFLOW_S3_RETRY_COUNT)
 *   MF_S3_RETRY_TIME                seconds a request may spend retrying (120)
 *   MF_S3_MULTIPART_THRESHOLD       objects above are multipart (16M)
 *   MF_S3_PART_SIZE                 multipart part and ranged-GET size (8M)
 *   MF_S3_CONNECT_TIMEOUT           seconds (10)
 *   MF_S3_STALL_TIMEOUT             seconds without progress before a
 *                                   transfer counts as failed (30)
 *   MF_S3_CREDENTIALS_REFRESH       seconds before temporary credentials
 *                                   expire that they are fetched again (300)
 *   MF_S3_REFRESH_AGE               put-if-absent copies an existing object
 *                                   onto itself when it is this old, to
 *                                   renew its mtime for GC (600)
 *
 * Threading: every method may be called from many threads at once. Each
 * call borrows one curl multi handle from the datastore's pool (so
 * connections are reused call after call without being shared between
 * threads) and runs all its transfers on it; a datastore-wide slot count
 * bounds the transfers in flight and a token bucket the bandwidth.
 */
#ifndef MF_DATASTORE_S3_H
#define MF_DATASTORE_S3_H

#include <stdbool.h>
#include <stdint.h>

#include "datastore/datastore.h"

/* Open "s3://bucket[/prefix]". MF_OK; MF_EINVAL (a root that is not an S3
 * URL, a bad bucket name or setting, naming it); MF_EACCESS (no
 * credentials anywhere); MF_EIO; MF_ENOMEM. Opening makes no request
 * unless credentials must be fetched (web identity, container, IMDS). */
int mf__s3_open(mf_datastore **out, const char *root);

/* Whether `ds` is an S3 datastore. */
bool mf__s3_is(const mf_datastore *ds);

/* List the "directories" right below `prefix` (which ends with '/', or is
 * ""): one call per distinct next component, given with `prefix` and a
 * trailing '/' ("Flow/"). Return non-zero to stop (MF_EUSER). */
int mf__s3_list_dirs(mf_datastore *ds, const char *prefix,
                     int (*cb)(const char *dir, void *payload), void *payload);

/* Delete many keys with DeleteObjects, 1000 per request. Missing keys are
 * not errors (S3 does not tell). `failed` (may be NULL) counts the keys
 * S3 refused; the first refusal is the error (MF_EIO / MF_EACCESS). */
int mf__s3_delete_batch(mf_datastore *ds, const char *const *keys, size_t n,
                        uint64_t *failed);

/* Request counters since open, for tests and benchmarks. */
typedef struct mf__s3_stats {
    uint64_t requests;   /* HTTP requests sent, retries included */
    uint64_t retries;    /* of which retries */
    uint64_t bytes_up;   /* body bytes sent */
    uint64_t bytes_down; /* body bytes received */
    uint64_t max_in_flight; /* most transfers in flight at once */
} mf__s3_stats;

void mf__s3_stats_get(mf_datastore *ds, mf__s3_stats *out);

#endif /* MF_DATASTORE_S3_H */
