/*
 * Internal: the AWS credential sources that need the network, for the S3
 * backend. mf__s3cfg_load() (config.h) resolves what needs none and, when
 * it finds no keys, names in `pending` the source an SDK would try next and
 * captures what that source reads; mf__s3creds_fetch() then asks it.
 * Nothing here is exported.
 *
 * Sources, as botocore does them:
 *   web-identity  read the token file (at most MF__S3CREDS_BODY_MAX bytes,
 *                 surrounding whitespace trimmed), then STS
 *                 AssumeRoleWithWebIdentity, unsigned: a form POST to the
 *                 STS endpoint (config.h; default https://sts.<region>.
 *                 amazonaws.com, .amazonaws.com.cn for cn-* regions). The
 *                 session name defaults to "libmetaflow-<unix time>".
 *                 Up to 3 attempts (connection failures, 5xx).
 *   container     GET the container URL with the Authorization header from
 *                 the token file (re-read each time, whitespace trimmed) or
 *                 variable. Plain http only to a loopback address,
 *                 "localhost", 169.254.170.2, 169.254.170.23 or
 *                 [fd00:ec2::23]; https to any host. 2 s per attempt, up
 *                 to 3 attempts 1 s apart (connection failures, 5xx, 429).
 *   imds          IMDSv2: PUT /latest/api/token (TTL 21600 s), then GET
 *                 /latest/meta-data/iam/security-credentials/ (the role:
 *                 first line) and .../<role> with the token. A token
 *                 request answered 403/404/405 or timing out after the
 *                 connection was made falls back to IMDSv1 (no token), as
 *                 botocore does, unless IMDSv1 is disabled; an endpoint
 *                 that cannot be reached fails at once. Timeout and
 *                 attempts per request from the config (default 1 s, 1).
 *   process       credential_process run with /bin/sh -c (posix_spawn;
 *                 stdin inherited, signals default and unblocked in the
 *                 child), stdout at most MF__S3CREDS_BODY_MAX bytes: JSON
 *                 {Version: 1, AccessKeyId, SecretAccessKey, SessionToken?,
 *                 Expiration?}. A non-zero exit is an error quoting the
 *                 start of its stderr. No timeout (neither has botocore).
 *   assume-role   STS AssumeRole (RoleArn, RoleSessionName as for
 *                 web-identity, ExternalId and DurationSeconds when set), a
 *                 form POST to the same STS endpoint, signed with SigV4
 *                 (service "sts", the config's region) by the credentials
 *                 of cfg->role_source, which are fetched first when they
 *                 are pending or missing, or can be fetched again and
 *                 expire within 300 s (so a chain of roles fetches inward,
 *                 and each link refreshes); if that fails while they have
 *                 not expired, they still sign. The request sends the Host
 *                 header it signed.
 *                 Up to 3 attempts, as web-identity. A profile with
 *                 mfa_serial fails with MF_ENOTSUP: no code can be asked.
 *   sso           IAM Identity Center, as botocore: read the token cache
 *                 the AWS CLI's "aws sso login" wrote (JSON: accessToken,
 *                 expiresAt). An sso-session token that expires within
 *                 15 min is refreshed first through SSO-OIDC CreateToken
 *                 (POST <oidc>/token, grant refresh_token, with the cache's
 *                 clientId, clientSecret and refreshToken, unless
 *                 registrationExpiresAt has passed), and the cache is
 *                 written back (a 0600 temporary file, then rename); a
 *                 failed refresh is only an error once the token has
 *                 expired. Then GET <portal>/federation/credentials
 *                 ?account_id=&role_name= with x-amz-sso_bearer_token.
 *                 No cache, an expired token or a 401 is MF_EACCESS with
 *                 "run 'aws sso login --profile <name>'". Up to 3
 *                 attempts per request (connection failures, 5xx, 429).
 *
 * HTTP: libcurl, TLS verified (the config's ca_bundle as CA file when set),
 * no redirects followed, http and https only, every response at most
 * MF__S3CREDS_BODY_MAX bytes. Proxies: none for the container source (as
 * botocore), else as libcurl takes them from the environment (http_proxy,
 * HTTPS_PROXY, NO_PROXY...), as botocore's IMDS and STS clients do. JSON must be an object with
 * no repeated keys; the STS XML is refused if it has a DOCTYPE.
 *
 * Secrets: request bodies, headers, responses and token files are wiped
 * (OPENSSL_cleanse) once used, and so are the strings of parsed JSON and
 * XML. Messages name the source and the URL (without user info or query),
 * the file or the profile, never a key id, secret, token or the command.
 *
 * Threading: no shared state but libcurl's global initialisation, done once
 * (pthread_once); fetches into different configurations may run at once. A
 * configuration is used by one thread at a time. Errors go to the calling
 * thread's error state.
 */
#ifndef MF_DATASTORE_S3_CREDS_H
#define MF_DATASTORE_S3_CREDS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* The most any response, token file or process output may hold. */
#define MF__S3CREDS_BODY_MAX (64u * 1024u)

/*
 * Fetch credentials from cfg->pending's source into cfg: access_key_id,
 * secret_access_key, session_token (NULL when a process gives none),
 * expiration (Unix seconds; 0 when a process gives none), source
 * ("web-identity", "assume-role", "sso", "container", "imds" or "process");
 * pending becomes NULL. When pending is NULL and source names one of
 * those, fetch from it again: that is how expiring credentials are
 * refreshed.
 *
 * MF_OK; MF_ENOTSUP for a role that needs an MFA code (the message says
 * which ways are supported); MF_EACCESS when STS refuses with HTTP 403 (its
 * Code and Message quoted) and for sso as above; MF_EINVAL for a setting or a response
 * that cannot be used (no role ARN, an http URL to a host not allowed, a
 * token with a line break, an empty token file, a malformed or incomplete
 * response, a process's JSON of another Version) or nothing to fetch;
 * MF_EIO when a file cannot be read, a server cannot be reached, times out
 * or refuses (an HTTP error status; an STS ErrorResponse, whose Code and
 * Message the message quotes), or the process fails; MF_ENOTFOUND when
 * pending is "imds" and AWS_EC2_METADATA_DISABLED is true; MF_ENOMEM. Every
 * imds failure says that no credentials were found in any source and lists
 * them.
 * On failure cfg's own credentials are unchanged (earlier ones stay
 * usable); an assume-role fetch may have renewed its role source's.
 */
int mf__s3creds_fetch(mf__s3cfg *cfg);

/* Fetched credentials, not yet in a configuration. Strings are owned
 * (moved into the configuration by mf__s3creds_install). */
typedef struct mf__s3creds {
    char *id, *secret, *token; /* token NULL when the source gives none */
    int64_t expiration;        /* Unix seconds; 0: none */
    const char *source;        /* static: "web-identity", "assume-role", ... */
} mf__s3creds;

/*
 * mf__s3creds_fetch() in two steps, so that the network part can run
 * without the lock that guards the credentials in use: fetch_new reads
 * cfg's settings, pending and source (and may renew cfg->role_source's
 * credentials), but leaves cfg's own credentials alone; install moves
 * `c` into cfg (MF_OK, or MF_ENOMEM with `c` wiped). Only one fetch_new
 * per configuration at a time; install must not race with readers of
 * cfg's credentials, source or pending.
 */
int mf__s3creds_fetch_new(mf__s3cfg *cfg, mf__s3creds *out);
int mf__s3creds_install(mf__s3cfg *cfg, mf__s3creds *c);

/* Free a libcurl header list, wiping every line first (they may hold a
 * session token or a bearer token). Accepts NULL. */
struct curl_slist;
void mf__s3_slist_wipe_free(struct curl_slist *l);

/* libcurl's global initialisation, once per process, for every S3 user
 * of libcurl. MF_OK or MF_EIO naming what failed. Thread-safe. */
int mf__s3_curl_ready(void);

/* True when cfg's credentials came from a source that can be asked again
 * (web-identity, assume-role, sso, container, imds, process). */
bool mf__s3creds_refreshable(const mf__s3cfg *cfg);

/* True when cfg holds temporary credentials (expiration != 0) that expire
 * within `margin` seconds of `now` (Unix seconds), or have expired. */
bool mf__s3creds_expiring(const mf__s3cfg *cfg, int64_t now, int64_t margin);

/* The STS URL a web-identity fetch posts to, replacing `out`'s contents.
 * MF_OK, MF_ENOMEM. For tests and messages. */
int mf__s3creds_sts_url(const mf__s3cfg *cfg, mf_buf *out);

#endif /* MF_DATASTORE_S3_CREDS_H */
