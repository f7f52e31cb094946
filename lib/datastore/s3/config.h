/*
 * Internal: the S3 backend's credentials, region and endpoint, resolved from
 * the environment and the AWS shared files the way the AWS SDKs (botocore
 * first) do, as far as that needs no network. Nothing here is exported.
 *
 * Credentials, first match wins (botocore's resolver order):
 *   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN,
 *      AWS_CREDENTIAL_EXPIRATION]; only one of the two set is an error;
 *      skipped when the profile assumes a role with credential_source =
 *      Environment (they then sign its AssumeRole);
 *   2. the profile has role_arn + source_profile/credential_source
 *      -> pending "assume-role" (needs STS; see below);
 *   3. AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or the profile's
 *      web_identity_token_file + role_arn -> pending "web-identity";
 *   4. the profile has sso_session/sso_start_url -> pending "sso";
 *   5. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default
 *      ~/.aws/credentials), section [<profile>];
 *   6. the profile has credential_process -> pending "process";
 *   7. the shared config file (AWS_CONFIG_FILE, default ~/.aws/config),
 *      section [profile <name>] or [default];
 *   8. AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI -> pending "container";
 *   9. otherwise pending "imds".
 * The profile is AWS_PROFILE, else "default". Empty variables count as unset.
 *
 * Region: AWS_REGION, AWS_DEFAULT_REGION, the profile's `region` in the
 * config file, else "us-east-1".
 * Endpoint: unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true:
 * AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's nested
 * "s3 =\n  endpoint_url = ..." (or the same in the [services <name>] section
 * the profile's `services` names), the profile's `endpoint_url`; else NULL
 * (AWS itself). Addressing: the profile's nested "s3 =\n  addressing_style".
 *
 * Files: at most 1 MiB, lines at most MF__S3CFG_MAX_LINE bytes, no NUL bytes;
 * a missing file is the same as an empty one. '#' and ';' start a comment at
 * the start of a line, or after whitespace inside a value (AWS secrets never
 * contain whitespace). Keys are case-insensitive, section names are not.
 * A repeated key or section: the last one wins.
 *
 * For the network sources (creds.h) the load also captures, when `pending`
 * names one, everything that source reads, so that fetching it - or
 * fetching it again to refresh - reads no environment and no config file:
 *   web-identity  AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN and
 *                 AWS_ROLE_SESSION_NAME, each else the profile's
 *                 web_identity_token_file, role_arn, role_session_name;
 *                 the STS endpoint as the S3 one above with STS's names
 *                 (AWS_ENDPOINT_URL_STS, "sts =\n  endpoint_url = ...");
 *   assume-role   the profile's role_arn, role_session_name, external_id,
 *                 duration_seconds (900..43200), mfa_serial; the STS
 *                 endpoint as for web-identity; and `role_source`, the
 *                 configuration of the credentials that call AssumeRole,
 *                 resolved now as botocore does:
 *                   credential_source = Environment: the environment's
 *                     keys (an error when there are none);
 *                     Ec2InstanceMetadata: pending "imds";
 *                     EcsContainer: pending "container";
 *                   source_profile = <name>: a profile that has role_arn
 *                     and a source but no keys assumes its own role first
 *                     (a chain, at most MF__S3CFG_MAX_CHAIN roles long; a
 *                     profile met twice is an error, except one naming
 *                     itself that has keys); any other resolves as steps
 *                     3-7 above without the environment (its
 *                     web_identity_token_file + role_arn, sso, keys,
 *                     credential_process), and an error when it has none.
 *                 Setting both source_profile and credential_source is an
 *                 error, as is an unknown credential_source.
 *   sso           IAM Identity Center: the profile's sso_account_id and
 *                 sso_role_name, and sso_start_url and sso_region, from
 *                 the [sso-session <name>] section its sso_session names
 *                 (the profile may repeat them, not contradict them), else
 *                 from the profile itself (the legacy form); all four are
 *                 needed. The token cache file, ~/.aws/sso/cache/<SHA-1 of
 *                 the session name, else of the start URL>.json, as the
 *                 AWS CLI writes it; the endpoints as the S3 one above with
 *                 the names AWS_ENDPOINT_URL_SSO / "sso" and
 *                 AWS_ENDPOINT_URL_SSO_OIDC / "sso-oidc";
 *   process       the profile's credential_process;
 *   container     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (appended to
 *                 http://169.254.170.2), else _FULL_URI;
 *                 AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, else
 *                 AWS_CONTAINER_AUTHORIZATION_TOKEN;
 *   imds          AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_V1_DISABLED,
 *                 AWS_EC2_METADATA_SERVICE_ENDPOINT(_MODE),
 *                 AWS_METADATA_SERVICE_TIMEOUT, _NUM_ATTEMPTS, each else
 *                 the profile's ec2_metadata_v1_disabled,
 *                 ec2_metadata_service_endpoint(_mode),
 *                 metadata_service_timeout, metadata_service_num_attempts.
 * Always: AWS_CA_BUNDLE, else the profile's ca_bundle.
 *
 * Errors name the variable or the file and line at fault, never a line's
 * text, so no message contains a key id, secret or session token.
 *
 * Threading: mf__s3cfg_load() reads the environment (getenv), so it must not
 * race with setenv/unsetenv in another thread; otherwise reentrant.
 */
#ifndef MF_DATASTORE_S3_CONFIG_H
#define MF_DATASTORE_S3_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

#define MF__S3CFG_MAX_FILE (1024u * 1024u)
#define MF__S3CFG_MAX_LINE 16384u
#define MF__S3CFG_MAX_CHAIN 8 /* roles assumed one after another */

typedef enum mf__s3cfg_addressing {
    MF__S3CFG_ADDRESSING_AUTO = 0, /* virtual when the bucket allows, else path */
    MF__S3CFG_ADDRESSING_VIRTUAL = 1,
    MF__S3CFG_ADDRESSING_PATH = 2
} mf__s3cfg_addressing;

typedef struct mf__s3cfg {
    /* All strings are owned by the struct (mf__s3cfg_dispose); NULL = absent. */
    char *access_key_id;
    char *secret_access_key;  /* wiped on dispose */
    char *session_token;      /* wiped on dispose */
    int64_t expiration;       /* Unix seconds; 0 = none */
    /* Where the keys came from: "environment", "shared-credentials:<profile>",
     * "shared-config:<profile>"; NULL when none were found. */
    char *source;
    /* When no keys were found: the network source an SDK would try next,
     * "assume-role", "web-identity", "sso", "process", "container" or
     * "imds" (static strings); NULL when keys were found. */
    const char *pending;
    char *profile;            /* the profile used, never NULL after a load */
    char *region;             /* never NULL after a load */
    char *endpoint_url;       /* NULL: AWS's own endpoint */
    mf__s3cfg_addressing addressing;
    char *ca_bundle;          /* CA file for TLS; NULL: the system's */

    /* What the pending network source needs (see above); NULL/0 unless
     * `pending` names that source. Kept after a fetch, for refreshes. */
    char *role_arn;                /* web-identity, assume-role */
    char *web_identity_token_file; /* web-identity; re-read at each fetch */
    char *role_session_name;       /* web-identity, assume-role; NULL: generated */
    char *sts_endpoint_url;        /* web-identity, assume-role; NULL:
                                      https://sts.<region>.amazonaws.com */
    struct mf__s3cfg *role_source; /* assume-role: what signs the AssumeRole
                                      call (owned; its own `pending` and
                                      `source` as a top-level one's) */
    char *external_id;             /* assume-role; NULL: none */
    char *mfa_serial;              /* assume-role; fetching then fails */
    int32_t duration_s;            /* assume-role; 0: STS's default */
    char *sso_start_url;           /* sso */
    char *sso_region;              /* sso: where the portal and OIDC are */
    char *sso_account_id;          /* sso */
    char *sso_role_name;           /* sso */
    char *sso_session;             /* sso: NULL for the legacy form, whose
                                      tokens are never refreshed */
    char *sso_cache_file;          /* sso: the token cache, re-read at each
                                      fetch, rewritten after a refresh */
    char *sso_endpoint_url;        /* sso: NULL: https://portal.sso.<sso_region>.amazonaws.com */
    char *sso_oidc_endpoint_url;   /* sso: NULL: https://oidc.<sso_region>.amazonaws.com */
    char *credential_process;      /* process: the command, for /bin/sh -c */
    char *container_url;           /* container: the full URL, never NULL for it */
    char *container_token_file;    /* container: Authorization from this file */
    char *container_token;         /* container: else this (wiped on dispose) */
    char *imds_endpoint;           /* imds: base URL, never NULL for it */
    bool imds_disabled;            /* imds: AWS_EC2_METADATA_DISABLED=true */
    bool imds_v1_disabled;         /* imds: no fallback to IMDSv1 */
    int32_t imds_timeout_s;        /* imds: per request, >= 1 (default 1) */
    int32_t imds_attempts;         /* imds: per request, >= 1 (default 1) */
} mf__s3cfg;

/* The fields after `addressing` start zero (NULL, false, 0). */
#define MF__S3CFG_INIT { NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, MF__S3CFG_ADDRESSING_AUTO }

/* Resolve everything into `out` (disposed first, so it may be reused).
 * Returns MF_OK (also when no keys were found: see `pending`), MF_EINVAL for
 * a half-set key pair, a malformed file, an unknown profile named by
 * AWS_PROFILE, a bad region, endpoint or expiration; MF_EIO when a file
 * exists but cannot be read; MF_ENOMEM. On error `out` is left disposed. */
int mf__s3cfg_load(mf__s3cfg *out);

/* Free every field, wiping the secrets, and reset to MF__S3CFG_INIT.
 * Accepts NULL. */
void mf__s3cfg_dispose(mf__s3cfg *cfg);

/* True when a request to `bucket` must use path-style addressing
 * (https://host/bucket/key): the configured style is "path", or it is "auto"
 * and the bucket is not DNS-compatible, or has a dot while the endpoint is
 * https (the wildcard certificate would not match), or the configured
 * endpoint's host is an IP address or "localhost" (no virtual hosts there). */
bool mf__s3cfg_use_path_style(const mf__s3cfg *cfg, const char *bucket);

/* ISO 8601 as AWS writes times, "YYYY-MM-DDTHH:MM:SS" with an optional
 * fraction (dropped) and "Z", "UTC" (older AWS CLI SSO caches), "+HH:MM",
 * "+HHMM" (or '-') or nothing for UTC, to Unix seconds. MF_OK or MF_EINVAL (no error message is set:
 * callers name the value's origin). */
int mf__s3cfg_parse_time(const char *s, int64_t *out);

/* True when `bucket` can be a DNS label set: 3..63 bytes of [a-z0-9.-],
 * labels starting and ending with a letter or digit, not an IPv4 address. */
bool mf__s3cfg_bucket_dns_compatible(const char *bucket);

#endif /* MF_DATASTORE_S3_CONFIG_H */
