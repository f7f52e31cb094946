/*
 * Unit tests of lib/datastore/s3/creds.c: the network credential sources
 * (STS web identity, container, IMDS, credential_process) end to end through
 * mf__s3cfg_load() and mf__s3creds_fetch(), against creds_server.py - a real
 * HTTP server on 127.0.0.1 that this test starts once (argv[1] is python3,
 * argv[2] the script) and stops at the end.
 *
 * Every test runs with all the variables the sources read unset, HOME at an
 * empty directory and no proxy variables; the environment is restored after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "datastore/s3/config.h"
#include "datastore/s3/creds.h"

extern char **environ;

/* The same values as creds_server.py. */
#define CONTAINER_AUTH "ctr-Auth-token/42=="
#define ROLE_ARN "arn:aws:iam::123456789012:role/metaflow"
#define WEB_TOKEN "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0+/=&%.s ig-_~"
#define CONTAINER_EXP INT64_C(1893553445) /* 2030-01-02T03:04:05Z */
#define IMDS_EXP INT64_C(1935817689)      /* 2031-05-06T07:08:09Z */
#define STS_EXP INT64_C(1961989567)       /* 2032-03-04T05:06:07.123Z */
#define FIRST_ARN "arn:aws:iam::123456789012:role/first"
#define EXTERNAL_ARN "arn:aws:iam::123456789012:role/external"
#define ROLE_EXP INT64_C(1996294028)  /* 2033-04-05T06:07:08Z */
#define FIRST_EXP INT64_C(1927857906) /* 2031-02-03T04:05:06Z */

static const char *g_python, *g_script;
static pid_t g_server = -1;
static int g_server_stdin = -1;
static int g_port;
static char g_dir[64];

static const char *const VARS[] = {
    "HOME",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_V1_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_METADATA_SERVICE_TIMEOUT",
    "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CA_BUNDLE",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "no_proxy",
    "NO_PROXY",
};
#define NVARS (sizeof VARS / sizeof VARS[0])

/* ---- the server */

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g_dir, name);
}

static int start_server(void **state)
{
    (void)state;
    char portfile[128], home[128];
    strcpy(g_dir, "/tmp/mf_s3creds_XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    path_in(portfile, sizeof portfile, "port");
    path_in(home, sizeof home, "home");
    if (mkdir(home, 0700) != 0)
        return -1;

    /* The server reads its stdin until EOF: it ends with this process. */
    int in[2];
    if (pipe(in) != 0)
        return -1;
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_addclose(&fa, in[0]);
    char *argv[] = { (char *)g_python, (char *)g_script, portfile, NULL };
    int err = posix_spawn(&g_server, g_python, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    g_server_stdin = in[1];
    if (err) {
        fprintf(stderr, "cannot start %s: %s\n", g_python, strerror(err));
        return -1;
    }
    for (int i = 0; i < 300; i++) { /* 15 s */
        FILE *fp = fopen(portfile, "r");
        if (fp) {
            int ok = fscanf(fp, "%d", &g_port);
            fclose(fp);
            if (ok == 1 && g_port > 0)
                return 0;
        }
        usleep(50000);
    }
    fprintf(stderr, "creds_server.py did not write its port\n");
    return -1;
}

static void rm(const char *name)
{
    char p[128];
    path_in(p, sizeof p, name);
    unlink(p);
}

static int stop_server(void **state)
{
    (void)state;
    if (g_server > 0) {
        kill(g_server, SIGTERM);
        waitpid(g_server, NULL, 0);
    }
    if (g_server_stdin >= 0)
        close(g_server_stdin);
    static const char *const files[] = { "port",   "token",   "ctoken",
                                         "config", "proc.sh", "credentials" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        rm(files[i]);
    char p[128];
    path_in(p, sizeof p, "home");
    rmdir(p);
    rmdir(g_dir);
    return 0;
}

/* How many requests the server has had for `path`. */
static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    mf_buf *b = ud;
    return mf__buf_put(b, p, size * n) == MF_OK ? size * n : 0;
}

/* GET one of the server's own pages ("/_hits<path>", "/_last<path>"). */
static void server_get(mf_buf *out, const char *page)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_port, page);
    mf__buf_clear(out);
    CURL *e = curl_easy_init();
    assert_non_null(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_cleanup(e);
    assert_int_equal(mf__buf_put(out, "", 1), MF_OK);
}

static long hits(const char *path)
{
    char page[200];
    mf_buf b = MF_BUF_INIT;
    snprintf(page, sizeof page, "/_hits%s", path);
    server_get(&b, page);
    long n = strtol(b.ptr, NULL, 10);
    mf_buf_dispose(&b);
    return n;
}

/* The last AssumeRole request to `path`, as "name=value\n" lines. */
static const char *last_request(const char *path)
{
    static char text[4096];
    char page[200];
    mf_buf b = MF_BUF_INIT;
    snprintf(page, sizeof page, "/_last%s", path);
    server_get(&b, page);
    snprintf(text, sizeof text, "%s", b.ptr);
    mf_buf_dispose(&b);
    return text;
}

/* ---- per test */

typedef struct fixture {
    char *saved[NVARS];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    for (size_t i = 0; i < NVARS; i++) {
        const char *v = getenv(VARS[i]);
        f->saved[i] = v ? strdup(v) : NULL;
        unsetenv(VARS[i]);
    }
    char home[128];
    path_in(home, sizeof home, "home");
    setenv("HOME", home, 1);
    /* A fetch that falls through to the instance metadata service must
     * not reach a real one at 169.254.169.254: nothing listens here. */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < NVARS; i++) {
        if (f->saved[i])
            setenv(VARS[i], f->saved[i], 1);
        else
            unsetenv(VARS[i]);
        free(f->saved[i]);
    }
    free(f);
    return 0;
}

static void write_file(const char *name, const char *text)
{
    char p[128];
    path_in(p, sizeof p, name);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

/* setenv(name, g_dir/file) */
static void set_path(const char *var, const char *file)
{
    char p[128];
    path_in(p, sizeof p, file);
    setenv(var, p, 1);
}

/* setenv(name, "http://127.0.0.1:<port><path>") */
static void set_url(const char *var, const char *path)
{
    char u[256];
    snprintf(u, sizeof u, "http://127.0.0.1:%d%s", g_port, path);
    setenv(var, u, 1);
}

static void load_ok(mf__s3cfg *cfg)
{
    if (mf__s3cfg_load(cfg) != MF_OK)
        fail_msg("load: %s", mf_error_last());
}

static void fetch_ok(mf__s3cfg *cfg)
{
    if (mf__s3creds_fetch(cfg) != MF_OK)
        fail_msg("fetch: %s", mf_error_last());
}

/* A message must never hold a key id, secret or token the server or a
 * file had, nor the credential_process command. */
static const char *clean(const char *msg)
{
    static const char *const secrets[] = { "sEcReT",    "tOkEn",    "ASIA",    "ctr-Auth",
                                           "AQAEAimds", "eyJhbGci", "CMDMARK", "LEAKED" };
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        if (strstr(msg, secrets[i]))
            fail_msg("secret '%s' in message: %s", secrets[i], msg);
    return msg;
}

/* Load (which must work), fetch (which must fail with `want`); the
 * message, checked clean, and cfg unchanged. */
static const char *fetch_err(mf__s3cfg *cfg, int want)
{
    load_ok(cfg);
    const char *pending = cfg->pending;
    int rc = mf__s3creds_fetch(cfg);
    if (rc != want)
        fail_msg("fetch: want %d, got %d: %s", want, rc, mf_error_last());
    assert_null(cfg->access_key_id);
    assert_ptr_equal(cfg->pending, pending);
    return clean(mf_error_last());
}

static void has(const char *msg, const char *part)
{
    if (!strstr(msg, part))
        fail_msg("'%s' not in: %s", part, msg);
}

static void has_url(const char *msg, const char *path)
{
    char u[256];
    snprintf(u, sizeof u, "'http://127.0.0.1:%d%s'", g_port, path);
    has(msg, u);
}

/* ---- web identity */

static void web_identity_env(void **state)
{
    (void)state;
    write_file("token", "\n  " WEB_TOKEN " \n"); /* trimmed; the inner space stays */
    set_path("AWS_WEB_IDENTITY_TOKEN_FILE", "token");
    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    setenv("AWS_ROLE_SESSION_NAME", "mf-test@session", 1);
    set_url("AWS_ENDPOINT_URL_STS", "/sts/ok");
    set_url("AWS_ENDPOINT_URL", "/sts/not-this-one");
    setenv("AWS_REGION", "eu-west-3", 1);

    mf__s3cfg cfg = MF__S3CFG_INIT;
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "web-identity");
    assert_string_equal(cfg.role_arn, ROLE_ARN);
    assert_string_equal(cfg.role_session_name, "mf-test@session");
    fetch_ok(&cfg);
    assert_null(cfg.pending);
    assert_string_equal(cfg.source, "web-identity");
    assert_string_equal(cfg.access_key_id, "ASIASTSEXAMPLE");
    assert_string_equal(cfg.secret_access_key, "sEcReTsts");
    assert_string_equal(cfg.session_token, "tOkEnsts/mf-test@session");
    assert_int_equal(cfg.expiration, STS_EXP);
    assert_string_equal(cfg.region, "eu-west-3");
    assert_int_equal(hits("/sts/ok"), 1);

    /* expiring: within the margin, or past */
    assert_true(mf__s3creds_expiring(&cfg, STS_EXP - 100, 300));
    assert_false(mf__s3creds_expiring(&cfg, STS_EXP - 100, 60));
    assert_true(mf__s3creds_expiring(&cfg, STS_EXP + 1, 0));
    assert_true(mf__s3creds_expiring(&cfg, INT64_MAX, 300));

    /* refresh: pending is gone, the source is fetched again (the token
     * file is read again: rotate it to a wrong one and STS refuses) */
    fetch_ok(&cfg);
    assert_string_equal(cfg.source, "web-identity");
    assert_string_equal(cfg.session_token, "tOkEnsts/mf-test@session");
    assert_int_equal(hits("/sts/ok"), 2);
    write_file("token", "eyJhbGciOtherToken");
    assert_int_equal(mf__s3creds_fetch(&cfg), MF_EIO);
    const char *msg = clean(mf_error_last());
    has(msg, "InvalidIdentityToken: Incorrect token audience");
    /* a failed refresh leaves the credentials in place */
    assert_string_equal(cfg.access_key_id, "ASIASTSEXAMPLE");
    assert_string_equal(cfg.source, "web-identity");
    mf__s3cfg_dispose(&cfg);
}

static void web_identity_profile(void **state)
{
    (void)state;
    char conf[1024], tok[128];
    write_file("token", WEB_TOKEN);
    path_in(tok, sizeof tok, "token");
    snprintf(conf, sizeof conf,
             "[profile web]\n"
             "role_arn = " ROLE_ARN "\n"
             "web_identity_token_file = %s\n"
             "region = us-west-2\n"
             "sts =\n"
             "  endpoint_url = http://127.0.0.1:%d/sts/ok\n"
             "[profile env]\n"
             "role_arn = arn:aws:iam::123456789012:role/other\n"
             "web_identity_token_file = /nonexistent/token\n",
             tok, g_port);
    write_file("config", conf);
    set_path("AWS_CONFIG_FILE", "config");
    setenv("AWS_PROFILE", "web", 1);

    mf__s3cfg cfg = MF__S3CFG_INIT;
    int64_t before = (int64_t)time(NULL);
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "web-identity");
    assert_null(cfg.role_session_name);
    fetch_ok(&cfg);
    /* the generated session name: libmetaflow-<unix time> */
    const char *prefix = "tOkEnsts/libmetaflow-";
    assert_memory_equal(cfg.session_token, prefix, strlen(prefix));
    long long t = strtoll(cfg.session_token + strlen(prefix), NULL, 10);
    assert_true(t >= before && t <= (int64_t)time(NULL));
    assert_int_equal(cfg.expiration, STS_EXP);

    /* per setting, the environment wins over the profile (botocore) */
    setenv("AWS_PROFILE", "env", 1);
    set_path("AWS_WEB_IDENTITY_TOKEN_FILE", "token");
    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    set_url("AWS_ENDPOINT_URL", "/sts/ok"); /* the generic one serves STS too */
    load_ok(&cfg);
    assert_string_equal(cfg.role_arn, ROLE_ARN);
    fetch_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "ASIASTSEXAMPLE");
    mf__s3cfg_dispose(&cfg);
}

static void web_identity_errors(void **state)
{
    (void)state;
    mf__s3cfg cfg = MF__S3CFG_INIT;
    write_file("token", WEB_TOKEN);
    set_path("AWS_WEB_IDENTITY_TOKEN_FILE", "token");
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/not-allowed", 1);
    set_url("AWS_ENDPOINT_URL_STS", "/sts/ok");

    const char *msg = fetch_err(&cfg, MF_EACCESS);
    has(msg, "web-identity");
    has_url(msg, "/sts/ok");
    has(msg, "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity");
    has(msg, "role/not-allowed");
    has(msg, "HTTP 403");

    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    set_url("AWS_ENDPOINT_URL_STS", "/sts/error");
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "ExpiredTokenException: Token expired");
    has_url(msg, "/sts/error");

    /* Throttling is retried */
    set_url("AWS_ENDPOINT_URL_STS", "/sts/throttle/1");
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_string_equal(cfg.secret_access_key, "sEcReTsts");
    assert_int_equal(hits("/sts/throttle/1"), 2);

    /* a DOCTYPE is refused before any entity is read */
    set_url("AWS_ENDPOINT_URL_STS", "/sts/doctype");
    msg = fetch_err(&cfg, MF_EINVAL);
    has(msg, "DOCTYPE is not allowed");

    /* a port nobody listens on (the server's own port, closed, is unknown:
     * use port 1, which needs root to serve) */
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/sts", 1);
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "web-identity: STS AssumeRoleWithWebIdentity at 'http://127.0.0.1:1/sts'");

    /* the token file */
    set_url("AWS_ENDPOINT_URL_STS", "/sts/ok");
    set_path("AWS_WEB_IDENTITY_TOKEN_FILE", "no-such-token");
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "web-identity: token file");
    has(msg, "no-such-token");
    write_file("token", " \n\t\n");
    set_path("AWS_WEB_IDENTITY_TOKEN_FILE", "token");
    msg = fetch_err(&cfg, MF_EINVAL);
    has(msg, "is empty");
    mf__s3cfg_dispose(&cfg);
}

static void sts_url(void **state)
{
    (void)state;
    mf__s3cfg cfg = MF__S3CFG_INIT;
    mf_buf u = MF_BUF_INIT;
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent", 1);
    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    setenv("AWS_REGION", "eu-west-3", 1);
    load_ok(&cfg);
    assert_int_equal(mf__s3creds_sts_url(&cfg, &u), MF_OK);
    assert_string_equal(u.ptr, "https://sts.eu-west-3.amazonaws.com");
    setenv("AWS_REGION", "cn-north-1", 1);
    load_ok(&cfg);
    assert_int_equal(mf__s3creds_sts_url(&cfg, &u), MF_OK);
    assert_string_equal(u.ptr, "https://sts.cn-north-1.amazonaws.com.cn");
    setenv("AWS_ENDPOINT_URL", "http://localstack:4566", 1);
    load_ok(&cfg);
    assert_int_equal(mf__s3creds_sts_url(&cfg, &u), MF_OK);
    assert_string_equal(u.ptr, "http://localstack:4566");
    setenv("AWS_ENDPOINT_URL_STS", "https://sts.example.com", 1);
    load_ok(&cfg);
    assert_int_equal(mf__s3creds_sts_url(&cfg, &u), MF_OK);
    assert_string_equal(u.ptr, "https://sts.example.com");
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    load_ok(&cfg);
    assert_int_equal(mf__s3creds_sts_url(&cfg, &u), MF_OK);
    assert_string_equal(u.ptr, "https://sts.cn-north-1.amazonaws.com.cn");
    mf_buf_dispose(&u);
    mf__s3cfg_dispose(&cfg);
}

/* ---- container */

static void container(void **state)
{
    (void)state;
    mf__s3cfg cfg = MF__S3CFG_INIT;
    set_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/container/auth");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_AUTH, 1);
    /* no proxy for the container source (botocore): this one would fail */
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "container");
    fetch_ok(&cfg);
    assert_null(cfg.pending);
    assert_string_equal(cfg.source, "container");
    assert_string_equal(cfg.access_key_id, "ASIACONTAINEREXAMPLE");
    assert_string_equal(cfg.secret_access_key, "sEcReTcontainer/Key+1");
    assert_string_equal(cfg.session_token, "tOkEncontainer");
    assert_int_equal(cfg.expiration, CONTAINER_EXP);
    assert_false(mf__s3creds_expiring(&cfg, CONTAINER_EXP - 3600, 300));
    assert_true(mf__s3creds_expiring(&cfg, CONTAINER_EXP - 200, 300));

    /* the token file wins over the variable and is trimmed (EKS Pod Identity) */
    write_file("ctoken", CONTAINER_AUTH "\n");
    set_path("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "ctoken");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ctr-Auth-wrong", 1);
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "ASIACONTAINEREXAMPLE");

    /* wrong or no token: the server's 401 */
    write_file("ctoken", "ctr-Auth-wrong");
    const char *msg = fetch_err(&cfg, MF_EIO);
    has(msg, "container");
    has_url(msg, "/container/auth");
    has(msg, "HTTP 401");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "HTTP 401");
    assert_int_equal(hits("/container/auth"), 4); /* 4xx are not retried */

    /* a token that would split the header */
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ctr-Auth\r\nX-Injected: 1", 1);
    msg = fetch_err(&cfg, MF_EINVAL);
    has(msg, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    has(msg, "line break");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");

    /* localhost is allowed over http too */
    char u[128];
    snprintf(u, sizeof u, "http://localhost:%d/container/open", g_port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", u, 1);
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_string_equal(cfg.session_token, "tOkEncontainer");

    /* the relative URI goes to ECS's address (not reachable here) */
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/3f7e-uuid", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.container_url, "http://169.254.170.2/v2/credentials/3f7e-uuid");
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "@evil.example.com/x", 1);
    assert_int_equal(mf__s3cfg_load(&cfg), MF_EINVAL);
    has(mf_error_last(), "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    mf__s3cfg_dispose(&cfg);
}

static void container_rules(void **state)
{
    (void)state;
    mf__s3cfg cfg = MF__S3CFG_INIT;
    /* plain http only to loopback and the ECS/EKS hosts; no request is made */
    static const char *const refused[] = {
        "http://example.com/creds",
        "http://10.0.0.1/creds",
        "http://169.254.170.3/creds",
        "http://127.0.0.1.nip.io/creds",
        "http://user:pw@example.com:80/creds?x=ctr-Auth",
        "http://[fd00:ec2::24]/creds",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], 1);
        const char *msg = fetch_err(&cfg, MF_EINVAL);
        has(msg, "container");
        has(msg, "not allowed");
    }
    has(mf_error_last(), "host 'fd00:ec2::24'");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://user:pw@example.com:80/creds?x=1", 1);
    const char *msg = fetch_err(&cfg, MF_EINVAL);
    has(msg, "'http://example.com:80/creds'"); /* no user info, no query */
    assert_null(strstr(msg, "pw"));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "file:///etc/passwd", 1);
    has(fetch_err(&cfg, MF_EINVAL), "not an http(s) URL");

    /* https may go anywhere; TLS is verified with AWS_CA_BUNDLE's file */
    char u[128];
    snprintf(u, sizeof u, "https://127.0.0.1:%d/container/open", g_port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", u, 1);
    set_path("AWS_CA_BUNDLE", "no-such-ca.pem");
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "no-such-ca.pem");
    assert_non_null(strstr(cfg.ca_bundle, "no-such-ca.pem"));
    unsetenv("AWS_CA_BUNDLE");

    /* redirects are not followed */
    set_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/container/redirect");
    long open_before = hits("/container/open");
    has(fetch_err(&cfg, MF_EIO), "HTTP 302");
    assert_int_equal(hits("/container/open"), open_before);

    /* bounded, well-formed, complete */
    set_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/container/huge");
    has(fetch_err(&cfg, MF_EIO), "larger than 65536 bytes");
    set_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/container/garbage");
    has(fetch_err(&cfg, MF_EINVAL), "not valid JSON (line 1, column");
    set_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/container/partial");
    has(fetch_err(&cfg, MF_EINVAL), "the response has no Token");

    /* 5xx is retried (3 attempts, 1 s apart) */
    set_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/container/flaky/1");
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "ASIACONTAINEREXAMPLE");
    assert_int_equal(hits("/container/flaky/1"), 3);
    mf__s3cfg_dispose(&cfg);
}

/* ---- IMDS */

static void imds(void **state)
{
    (void)state;
    mf__s3cfg cfg = MF__S3CFG_INIT;
    set_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/imds/ok/"); /* trailing '/' is fine */
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "imds");
    assert_int_equal(cfg.imds_timeout_s, 1);
    assert_int_equal(cfg.imds_attempts, 1);
    /* botocore's 1 s is short for a loaded test machine: the requests below
     * must not time out (the timeout itself is tested in imds_errors) */
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "10", 1);
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_null(cfg.pending);
    assert_string_equal(cfg.source, "imds");
    assert_string_equal(cfg.access_key_id, "ASIAIMDSEXAMPLE");
    assert_string_equal(cfg.secret_access_key, "sEcReTimds");
    assert_string_equal(cfg.session_token, "tOkEnimds");
    assert_int_equal(cfg.expiration, IMDS_EXP);
    /* one token, one role listing, one credentials request (all with the token:
     * the server answers 401 without it) */
    assert_int_equal(hits("/imds/ok/latest/api/token"), 1);
    assert_int_equal(hits("/imds/ok/latest/meta-data/iam/security-credentials/"), 1);
    assert_int_equal(hits("/imds/ok/latest/meta-data/iam/security-credentials/metaflow-role"), 1);

    /* IMDSv1 when the token request is refused with 403, as botocore */
    set_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/imds/v1");
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "ASIAIMDSEXAMPLE");
    setenv("AWS_EC2_METADATA_V1_DISABLED", "true", 1);
    const char *msg = fetch_err(&cfg, MF_EIO);
    has(msg, "IMDSv1 is disabled");
    has(msg, "token request: HTTP 403");
    unsetenv("AWS_EC2_METADATA_V1_DISABLED");

    /* settings */
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "5", 1);
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3", 1);
    load_ok(&cfg);
    assert_int_equal(cfg.imds_timeout_s, 5);
    assert_int_equal(cfg.imds_attempts, 3);
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "1.5", 1);
    assert_int_equal(mf__s3cfg_load(&cfg), MF_EINVAL);
    has(mf_error_last(), "AWS_METADATA_SERVICE_TIMEOUT '1.5'");
    unsetenv("AWS_METADATA_SERVICE_TIMEOUT");
    unsetenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS");
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    load_ok(&cfg);
    assert_string_equal(cfg.imds_endpoint, "http://169.254.169.254");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.imds_endpoint, "http://[fd00:ec2::254]");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv5", 1);
    assert_int_equal(mf__s3cfg_load(&cfg), MF_EINVAL);
    mf__s3cfg_dispose(&cfg);
}

static void imds_errors(void **state)
{
    (void)state;
    mf__s3cfg cfg = MF__S3CFG_INIT;
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "10", 1);

    /* the no-credentials message a user without AWS keys sees */
    set_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/imds/norole");
    const char *msg = fetch_err(&cfg, MF_EIO);
    has(msg, "no AWS credentials found in any source");
    has(msg, "AWS_ACCESS_KEY_ID");
    has(msg, "AWS_WEB_IDENTITY_TOKEN_FILE");
    has(msg, "shared credentials or config file (profile 'default')");
    has(msg, "credential_process");
    has(msg, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    has(msg, "EC2 instance metadata service");
    has_url(msg, "/imds/norole");
    has(msg, "no IAM role is attached to this instance (HTTP 404)");

    set_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/imds/error");
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "no AWS credentials found in any source");
    has(msg, "role 'metaflow-role': AssumeRoleUnauthorizedAccess: EC2 cannot assume");

    /* nothing listening: fails at once, without an IMDSv1 retry */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "no AWS credentials found in any source");
    has(msg, "imds at 'http://127.0.0.1:1'");

    /* a slow service: botocore's default 1 s timeout */
    unsetenv("AWS_METADATA_SERVICE_TIMEOUT");
    set_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/imds/slow");
    setenv("AWS_EC2_METADATA_V1_DISABLED", "true", 1);
    int64_t t0 = mf__mono_us();
    msg = fetch_err(&cfg, MF_EIO);
    int64_t took = mf__mono_us() - t0;
    has(msg, "no AWS credentials found in any source");
    has(msg, "timed out");
    assert_true(took >= 900000 && took < 5000000);
    unsetenv("AWS_EC2_METADATA_V1_DISABLED");
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "10", 1);

    /* disabled: no request at all */
    set_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/imds/ok");
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    long before = hits("/imds/ok/latest/api/token");
    msg = fetch_err(&cfg, MF_ENOTFOUND);
    has(msg, "no AWS credentials found in any source");
    has(msg, "disabled by AWS_EC2_METADATA_DISABLED");
    assert_int_equal(hits("/imds/ok/latest/api/token"), before);
    /* anything but true is false (botocore) */
    setenv("AWS_EC2_METADATA_DISABLED", "1", 1);
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_string_equal(cfg.source, "imds");
    mf__s3cfg_dispose(&cfg);
}

/* ---- credential_process */

static void process(void **state)
{
    (void)state;
    char conf[2048], script[128];
    path_in(script, sizeof script, "proc.sh");
    write_file("proc.sh",
               "case \"$1\" in\n"
               "ok) printf '%s\\n' '{\"Version\": 1, \"AccessKeyId\": \"ASIAPROCEXAMPLE\", "
               "\"SecretAccessKey\": \"sEcReTproc\", \"SessionToken\": \"tOkEnproc\", "
               "\"Expiration\": \"2030-01-02T05:04:05+02:00\"}' ;;\n"
               "static) echo '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", "
               "\"SecretAccessKey\": \"sEcReTstatic\"}' ;;\n"
               "v2) echo '{\"Version\": 2, \"AccessKeyId\": \"ASIAX\", \"SecretAccessKey\": "
               "\"sEcReTx\"}' ;;\n"
               "fail) echo 'vault unreachable: connection refused' >&2; exit 3 ;;\n"
               "big) head -c 70000 /dev/zero | tr '\\0' ' ' ;;\n"
               "env) printf '{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": "
               "\"sEcReTenv\"}' \"$MF_TEST_KEY\" ;;\n"
               "esac\n");
    snprintf(conf, sizeof conf,
             "[profile ok]\ncredential_process = /bin/sh %s ok # CMDMARK\n"
             "[profile static]\ncredential_process = /bin/sh %s static\n"
             "[profile v2]\ncredential_process = /bin/sh %s v2 CMDMARK\n"
             "[profile fail]\ncredential_process = /bin/sh %s fail CMDMARK\n"
             "[profile big]\ncredential_process = /bin/sh %s big CMDMARK\n"
             "[profile env]\ncredential_process = /bin/sh %s env\n",
             script, script, script, script, script, script);
    write_file("config", conf);
    set_path("AWS_CONFIG_FILE", "config");
    mf__s3cfg cfg = MF__S3CFG_INIT;

    setenv("AWS_PROFILE", "ok", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "process");
    fetch_ok(&cfg);
    assert_string_equal(cfg.source, "process");
    assert_string_equal(cfg.access_key_id, "ASIAPROCEXAMPLE");
    assert_string_equal(cfg.secret_access_key, "sEcReTproc");
    assert_string_equal(cfg.session_token, "tOkEnproc");
    assert_int_equal(cfg.expiration, CONTAINER_EXP); /* 05:04:05+02:00 is 03:04:05Z */

    setenv("AWS_PROFILE", "static", 1);
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "AKIAPROC");
    assert_null(cfg.session_token);
    assert_int_equal(cfg.expiration, 0);
    assert_false(mf__s3creds_expiring(&cfg, INT64_MAX, 300));

    /* the child has the environment */
    setenv("AWS_PROFILE", "env", 1);
    setenv("MF_TEST_KEY", "AKIAFROMENV", 1);
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "AKIAFROMENV");
    unsetenv("MF_TEST_KEY");

    setenv("AWS_PROFILE", "v2", 1);
    const char *msg = fetch_err(&cfg, MF_EINVAL);
    has(msg, "process");
    has(msg, "profile 'v2'");
    has(msg, "only Version 1 is supported");

    setenv("AWS_PROFILE", "fail", 1);
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "profile 'fail' exited with status 3: vault unreachable: connection refused");

    setenv("AWS_PROFILE", "big", 1);
    msg = fetch_err(&cfg, MF_EINVAL);
    has(msg, "wrote more than 65536 bytes");
    mf__s3cfg_dispose(&cfg);
}

static void time_offsets(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(mf__s3cfg_parse_time("2030-01-02T03:04:05Z", &t), MF_OK);
    assert_int_equal(t, CONTAINER_EXP);
    assert_int_equal(mf__s3cfg_parse_time("2030-01-02T05:04:05+02:00", &t), MF_OK);
    assert_int_equal(t, CONTAINER_EXP);
    assert_int_equal(mf__s3cfg_parse_time("2030-01-02T01:34:05-0130", &t), MF_OK);
    assert_int_equal(t, CONTAINER_EXP);
    assert_int_equal(mf__s3cfg_parse_time("2030-01-02T03:04:05.999999", &t), MF_OK);
    assert_int_equal(t, CONTAINER_EXP);
    /* older AWS CLI SSO caches */
    assert_int_equal(mf__s3cfg_parse_time("2030-01-02T03:04:05UTC", &t), MF_OK);
    assert_int_equal(t, CONTAINER_EXP);
    static const char *const bad[] = { "2030-01-02T03:04:05+2",
                                       "2030-01-02T03:04:05UTCX",
                                       "2030-02-29T03:04:05Z", /* not a leap year */
                                       "2030-04-31T03:04:05Z",
                                       "2030-01-02T03:04:05.Z",
                                       " 2030-01-02T03:04:05Z",
                                       "2030-01-02T03:04:05+02:0",
                                       "2030-01-02T03:04:05+24:00",
                                       "2030-01-02T03:04:05 Z",
                                       "2030-01-02",
                                       "2030-13-02T03:04:05Z" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (mf__s3cfg_parse_time(bad[i], &t) != MF_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
}

/* ---- the rest */

static void not_fetchable(void **state)
{
    (void)state;
    mf__s3cfg cfg = MF__S3CFG_INIT;
    const char *msg;

    /* static keys: nothing to fetch, even when they expire */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "sEcReTENV", 1);
    setenv("AWS_CREDENTIAL_EXPIRATION", "2030-01-02T03:04:05Z", 1);
    load_ok(&cfg);
    assert_true(mf__s3creds_expiring(&cfg, CONTAINER_EXP, 0));
    assert_int_equal(mf__s3creds_fetch(&cfg), MF_EINVAL);
    msg = clean(mf_error_last());
    has(msg, "AWS credentials from environment cannot be fetched again");
    assert_string_equal(cfg.secret_access_key, "sEcReTENV");
    mf__s3cfg_dispose(&cfg);

    mf__s3cfg empty = MF__S3CFG_INIT;
    assert_false(mf__s3creds_expiring(&empty, 0, 0));
    assert_int_equal(mf__s3creds_fetch(&empty), MF_EINVAL);
}

/* ---- assume-role */

static void iso_in(char *out, size_t cap, int64_t seconds_from_now)
{
    time_t t = time(NULL) + (time_t)seconds_from_now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


static const char ROLE_CONFIG[] =
    "[profile role]\n"
    "role_arn = " ROLE_ARN "\n"
    "source_profile = base\n"
    "role_session_name = mf-test\n"
    "duration_seconds = 1800\n"
    "region = eu-west-2\n"
    "[profile base]\n"
    "aws_access_key_id = AKIDSOURCE\n"
    "aws_secret_access_key = sEcReTsource\n"
    "[profile external]\n"
    "role_arn = " EXTERNAL_ARN "\n"
    "source_profile = base\n"
    "external_id = ext-42\n"
    "[profile chain]\n"
    "role_arn = " ROLE_ARN "\n"
    "source_profile = first\n"
    "[profile first]\n"
    "role_arn = " FIRST_ARN "\n"
    "source_profile = base\n"
    "[profile self]\n"
    "role_arn = " ROLE_ARN "\n"
    "source_profile = self\n"
    "aws_access_key_id = AKIDSOURCE\n"
    "aws_secret_access_key = sEcReTsource\n"
    "[profile env]\n"
    "role_arn = " ROLE_ARN "\n"
    "credential_source = Environment\n"
    "[profile imds]\n"
    "role_arn = " ROLE_ARN "\n"
    "credential_source = Ec2InstanceMetadata\n"
    "[profile ecs]\n"
    "role_arn = " ROLE_ARN "\n"
    "credential_source = EcsContainer\n"
    "[profile viaproc]\n"
    "role_arn = " ROLE_ARN "\n"
    "source_profile = proc\n";

/* The credentials a fetch must have put in cfg. */
static void has_role_creds(const mf__s3cfg *cfg, const char *id, int64_t exp)
{
    assert_null(cfg->pending);
    assert_string_equal(cfg->source, "assume-role");
    assert_string_equal(cfg->access_key_id, id);
    assert_int_equal(cfg->expiration, exp);
    assert_non_null(cfg->session_token);
}

static void assume_role(void **state)
{
    (void)state;
    char conf[4096], script[128];
    path_in(script, sizeof script, "proc.sh");
    snprintf(conf, sizeof conf,
             "%s[profile proc]\ncredential_process = sh %s\n", ROLE_CONFIG, script);
    write_file("config", conf);
    write_file("proc.sh", "echo '{\"Version\": 1, \"AccessKeyId\": \"ASIAFIRSTEXAMPLE\", "
                          "\"SecretAccessKey\": \"sEcReTfirst/x+y\", \"SessionToken\": "
                          "\"tOkEnfirst\"}'\n");
    set_path("AWS_CONFIG_FILE", "config");
    set_url("AWS_ENDPOINT_URL_STS", "/sts/ok");
    mf__s3cfg cfg = MF__S3CFG_INIT;

    /* source_profile with keys: one signed AssumeRole with every setting */
    setenv("AWS_PROFILE", "role", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "assume-role");
    assert_string_equal(cfg.role_arn, ROLE_ARN);
    assert_int_equal(cfg.duration_s, 1800);
    assert_non_null(cfg.role_source);
    assert_string_equal(cfg.role_source->access_key_id, "AKIDSOURCE");
    assert_string_equal(cfg.role_source->source, "shared-config:base");
    assert_string_equal(cfg.role_source->region, "eu-west-2");
    long before = hits("/sts/ok");
    fetch_ok(&cfg);
    has_role_creds(&cfg, "ASIAROLEEXAMPLE", ROLE_EXP);
    assert_string_equal(cfg.secret_access_key, "sEcReTrole");
    assert_string_equal(cfg.session_token, "tOkEnrole");
    assert_true(mf__s3creds_refreshable(&cfg));
    assert_int_equal(hits("/sts/ok"), before + 1);
    const char *req = last_request("/sts/ok");
    has(req, "key=AKIDSOURCE\n");
    has(req, "region=eu-west-2\n");
    has(req, "token=\n");
    has(req, "form.RoleArn=" ROLE_ARN "\n");
    has(req, "form.RoleSessionName=mf-test\n");
    has(req, "form.DurationSeconds=1800\n");
    assert_null(strstr(req, "form.ExternalId"));
    /* a refresh asks again, with the same source keys */
    fetch_ok(&cfg);
    has_role_creds(&cfg, "ASIAROLEEXAMPLE", ROLE_EXP);
    assert_int_equal(hits("/sts/ok"), before + 2);

    /* the Host header sent is the one signed, whatever the URL's case or
     * port form */
    char url[256];
    snprintf(url, sizeof url, "http://LOCALHOST:%d/sts/ok", g_port);
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    load_ok(&cfg);
    fetch_ok(&cfg);
    snprintf(url, sizeof url, "http://127.0.0.1:0%d/sts/ok", g_port);
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    load_ok(&cfg);
    fetch_ok(&cfg);
    assert_int_equal(hits("/sts/ok"), before + 4);
    set_url("AWS_ENDPOINT_URL_STS", "/sts/ok");

    /* duration_seconds at its bounds */
    static const char *const bounds[] = { "900", "43200" };
    for (size_t i = 0; i < 2; i++) {
        char c2[4096];
        snprintf(c2, sizeof c2, "%s[profile bound]\nrole_arn = " ROLE_ARN
                 "\nsource_profile = base\nduration_seconds = %s\n", ROLE_CONFIG, bounds[i]);
        write_file("config", c2);
        setenv("AWS_PROFILE", "bound", 1);
        load_ok(&cfg);
        fetch_ok(&cfg);
        char want[64];
        snprintf(want, sizeof want, "form.DurationSeconds=%s\n", bounds[i]);
        has(last_request("/sts/ok"), want);
    }
    write_file("config", conf);

    /* external_id; the default session name; a throttled first answer */
    setenv("AWS_PROFILE", "external", 1);
    set_url("AWS_ENDPOINT_URL_STS", "/sts/throttle/ar");
    load_ok(&cfg);
    fetch_ok(&cfg);
    has_role_creds(&cfg, "ASIAEXTERNALEXAMPLE", ROLE_EXP);
    assert_int_equal(hits("/sts/throttle/ar"), 2);
    req = last_request("/sts/throttle/ar");
    has(req, "form.ExternalId=ext-42\n");
    has(req, "form.RoleSessionName=libmetaflow-");
    has(req, "region=us-east-1\n");
    assert_null(strstr(req, "form.DurationSeconds"));
    set_url("AWS_ENDPOINT_URL_STS", "/sts/ok");

    /* a chain: first's role is assumed with base's keys, then role's with
     * first's temporary credentials (and their session token) */
    setenv("AWS_PROFILE", "chain", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.role_source->pending, "assume-role");
    assert_string_equal(cfg.role_source->role_arn, FIRST_ARN);
    assert_string_equal(cfg.role_source->role_source->access_key_id, "AKIDSOURCE");
    before = hits("/sts/ok");
    fetch_ok(&cfg);
    has_role_creds(&cfg, "ASIAROLEEXAMPLE", ROLE_EXP);
    has_role_creds(cfg.role_source, "ASIAFIRSTEXAMPLE", FIRST_EXP);
    assert_int_equal(hits("/sts/ok"), before + 2);
    req = last_request("/sts/ok");
    has(req, "key=ASIAFIRSTEXAMPLE\n");
    has(req, "token=tOkEnfirst\n");
    has(req, "form.RoleArn=" ROLE_ARN "\n");
    /* the inner credentials are good for years: a refresh asks once */
    fetch_ok(&cfg);
    assert_int_equal(hits("/sts/ok"), before + 3);
    /* inner credentials about to expire are renewed first */
    cfg.role_source->expiration = (int64_t)time(NULL) + 60;
    fetch_ok(&cfg);
    assert_int_equal(hits("/sts/ok"), before + 5);
    has_role_creds(cfg.role_source, "ASIAFIRSTEXAMPLE", FIRST_EXP);

    /* a profile that names itself and has keys uses them */
    setenv("AWS_PROFILE", "self", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.role_source->source, "shared-config:self");
    fetch_ok(&cfg);
    has(last_request("/sts/ok"), "key=AKIDSOURCE\n");

    /* credential_source: the environment's keys, even though they are set
     * (AWS_PROFILE names the role on purpose) */
    setenv("AWS_PROFILE", "env", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "sEcReTENV", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "assume-role");
    assert_string_equal(cfg.role_source->source, "environment");
    fetch_ok(&cfg);
    has_role_creds(&cfg, "ASIAROLEEXAMPLE", ROLE_EXP);
    has(last_request("/sts/ok"), "key=AKIDENV\n");
    /* keys that expire soon but cannot be fetched again still sign */
    char soon[32];
    iso_in(soon, sizeof soon, 120);
    setenv("AWS_CREDENTIAL_EXPIRATION", soon, 1);
    load_ok(&cfg);
    fetch_ok(&cfg);
    has(last_request("/sts/ok"), "key=AKIDENV\n");
    unsetenv("AWS_CREDENTIAL_EXPIRATION");
    /* ... and other profiles still take the environment's keys */
    setenv("AWS_PROFILE", "role", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.source, "environment");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");

    /* credential_source: instance metadata and the container endpoint */
    setenv("AWS_PROFILE", "imds", 1);
    set_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/imds/ok");
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "10", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.role_source->pending, "imds");
    fetch_ok(&cfg);
    has_role_creds(&cfg, "ASIAROLEEXAMPLE", ROLE_EXP);
    assert_string_equal(cfg.role_source->source, "imds");
    req = last_request("/sts/ok");
    has(req, "key=ASIAIMDSEXAMPLE\n");
    has(req, "token=tOkEnimds\n");
    setenv("AWS_PROFILE", "ecs", 1);
    set_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/container/open");
    load_ok(&cfg);
    fetch_ok(&cfg);
    has(last_request("/sts/ok"), "key=ASIACONTAINEREXAMPLE\n");

    /* a source profile with a credential_process */
    setenv("AWS_PROFILE", "viaproc", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.role_source->pending, "process");
    fetch_ok(&cfg);
    has_role_creds(&cfg, "ASIAROLEEXAMPLE", ROLE_EXP);
    req = last_request("/sts/ok");
    has(req, "key=ASIAFIRSTEXAMPLE\n");
    has(req, "token=tOkEnfirst\n");
    mf__s3cfg_dispose(&cfg);
}

/* A load that must fail with MF_EINVAL; its message. */
static const char *load_err(mf__s3cfg *cfg)
{
    assert_int_equal(mf__s3cfg_load(cfg), MF_EINVAL);
    return clean(mf_error_last());
}

static void assume_role_errors(void **state)
{
    (void)state;
    write_file("config",
               "[profile loop1]\nrole_arn = " ROLE_ARN "\nsource_profile = loop2\n"
               "[profile loop2]\nrole_arn = " FIRST_ARN "\nsource_profile = loop1\n"
               "[profile both]\nrole_arn = " ROLE_ARN "\nsource_profile = base\n"
               "credential_source = Environment\n"
               "[profile badsrc]\nrole_arn = " ROLE_ARN "\ncredential_source = Laptop\n"
               "[profile nokeys]\nrole_arn = " ROLE_ARN "\nsource_profile = empty\n"
               "[profile empty]\nregion = us-west-2\n"
               "[profile missing]\nrole_arn = " ROLE_ARN "\nsource_profile = nowhere\n"
               "[profile env]\nrole_arn = " ROLE_ARN "\ncredential_source = Environment\n"
               "[profile ecs]\nrole_arn = " ROLE_ARN "\ncredential_source = EcsContainer\n"
               "[profile short]\nrole_arn = " ROLE_ARN "\nsource_profile = base\n"
               "duration_seconds = 899\n"
               "[profile long]\nrole_arn = " ROLE_ARN "\nsource_profile = base\n"
               "duration_seconds = 43201\n"
               "[profile ka]\nrole_arn = " ROLE_ARN "\nsource_profile = kb\n"
               "aws_access_key_id = AKIDSOURCE\naws_secret_access_key = sEcReTsource\n"
               "[profile kb]\nrole_arn = " FIRST_ARN "\nsource_profile = ka\n"
               "[profile badname]\nrole_arn = " ROLE_ARN "\nsource_profile = base\n"
               "role_session_name = has space\n"
               "[profile mfa]\nrole_arn = " ROLE_ARN "\nsource_profile = base\n"
               "mfa_serial = arn:aws:iam::123456789012:mfa/dev\n"
               "[profile denied]\nrole_arn = arn:aws:iam::123456789012:role/not-allowed\n"
               "source_profile = base\n"
               "[profile noext]\nrole_arn = " EXTERNAL_ARN "\nsource_profile = base\n"
               "[profile badsecret]\nrole_arn = " ROLE_ARN "\nsource_profile = wrong\n"
               "[profile wrong]\naws_access_key_id = AKIDSOURCE\n"
               "aws_secret_access_key = sEcReTwrong\n"
               "[profile noimds]\nrole_arn = " ROLE_ARN "\ncredential_source = Ec2InstanceMetadata\n"
               "[profile c1]\nrole_arn = " ROLE_ARN "\nsource_profile = c2\n"
               "[profile c2]\nrole_arn = " ROLE_ARN "\nsource_profile = c3\n"
               "[profile c3]\nrole_arn = " ROLE_ARN "\nsource_profile = c4\n"
               "[profile c4]\nrole_arn = " ROLE_ARN "\nsource_profile = c5\n"
               "[profile c5]\nrole_arn = " ROLE_ARN "\nsource_profile = c6\n"
               "[profile c6]\nrole_arn = " ROLE_ARN "\nsource_profile = c7\n"
               "[profile c7]\nrole_arn = " ROLE_ARN "\nsource_profile = c8\n"
               "[profile c8]\nrole_arn = " ROLE_ARN "\nsource_profile = c9\n"
               "[profile c9]\nrole_arn = " ROLE_ARN "\nsource_profile = base\n"
               "[profile base]\naws_access_key_id = AKIDSOURCE\n"
               "aws_secret_access_key = sEcReTsource\n");
    set_path("AWS_CONFIG_FILE", "config");
    set_url("AWS_ENDPOINT_URL_STS", "/sts/ok");
    mf__s3cfg cfg = MF__S3CFG_INIT;

    /* settings that cannot work fail at load, naming the profile */
    static const char *const bad[][2] = {
        { "loop1", "AWS profiles assume roles in a loop: loop1 -> loop2 -> loop1" },
        { "both", "AWS profile 'both' has both source_profile and credential_source" },
        { "badsrc", "credential_source 'Laptop' is not Environment, Ec2InstanceMetadata or "
                    "EcsContainer" },
        { "nokeys", "AWS profile 'empty', the source_profile of profile 'nokeys', has no "
                    "credentials" },
        { "missing", "AWS profile 'missing': its source_profile 'nowhere' is in neither" },
        { "env", "credential_source is Environment but AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY are not set" },
        { "ecs", "credential_source is EcsContainer but neither "
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor" },
        { "short", "AWS profile 'short': duration_seconds '899' is not a whole number from 900 "
                   "to 43200" },
        { "long", "AWS profile 'long': duration_seconds '43201' is not" },
        { "ka", "AWS profiles assume roles in a loop: ka -> kb -> ka" },
        { "badname", "role_session_name 'has space' is not a role session name" },
        { "c1", "AWS profiles assume more than 8 roles in a row: c1 -> c2" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("AWS_PROFILE", bad[i][0], 1);
        has(load_err(&cfg), bad[i][1]);
    }

    /* refused by STS, or never asked */
    const char *req;
    long before = hits("/sts/ok");
    setenv("AWS_PROFILE", "mfa", 1);
    const char *msg = fetch_err(&cfg, MF_ENOTSUP);
    has(msg, "assume-role: profile 'mfa' needs an MFA code (mfa_serial)");
    has(msg, "credential_process");
    assert_int_equal(hits("/sts/ok"), before);

    setenv("AWS_PROFILE", "denied", 1);
    msg = fetch_err(&cfg, MF_EACCESS);
    has(msg, "assume-role (profile 'denied'): STS AssumeRole at");
    has_url(msg, "/sts/ok");
    has(msg, "refused role 'arn:aws:iam::123456789012:role/not-allowed' (HTTP 403): "
             "AccessDenied: User: arn:aws:iam::123456789012:user/dev is not authorized");
    setenv("AWS_PROFILE", "noext", 1);
    has(fetch_err(&cfg, MF_EACCESS), "AccessDenied");
    req = last_request("/sts/ok");
    has(req, "form.RoleArn=" EXTERNAL_ARN "\n");
    assert_null(strstr(req, "form.ExternalId"));

    setenv("AWS_PROFILE", "badsecret", 1);
    msg = fetch_err(&cfg, MF_EACCESS);
    has(msg, "SignatureDoesNotMatch: The request signature we calculated does not match");

    /* the source fails: its message, inside the role's */
    setenv("AWS_PROFILE", "noimds", 1);
    set_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/imds/norole");
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "10", 1);
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "assume-role: profile 'noimds': the credentials for role '" ROLE_ARN "'");
    has(msg, "no IAM role is attached to this instance (HTTP 404)");
    assert_null(cfg.role_source->access_key_id);

    /* an STS endpoint that cannot be signed as it is sent */
    setenv("AWS_PROFILE", "denied", 1);
    set_url("AWS_ENDPOINT_URL_STS", "/sts/ok?x=1");
    msg = fetch_err(&cfg, MF_EINVAL);
    has(msg, "cannot be signed");

    /* nothing listening */
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1);
    msg = fetch_err(&cfg, MF_EIO);
    has(msg, "assume-role (profile 'denied'): STS AssumeRole at 'http://127.0.0.1:1'");
    mf__s3cfg_dispose(&cfg);
}

/* ---- IAM Identity Center */

#define SSO_URL "https://d-123.awsapps.com/start"
#define SSO_EXP INT64_C(2000000000) /* the portal's expiration, in ms, / 1000 */
#define SSO_PORTAL "/sso/ok/federation/credentials"

static const char SSO_CONFIG[] =
    "[profile legacy]\n"
    "sso_start_url = " SSO_URL "\n"
    "sso_region = eu-central-1\n"
    "sso_account_id = 123456789012\n"
    "sso_role_name = MetaflowRole\n"
    "[profile corp]\n"
    "sso_session = corp\n"
    "sso_account_id = 123456789012\n"
    "sso_role_name = MetaflowRole\n"
    "[profile norole]\n"
    "sso_session = corp\n"
    "sso_account_id = 123456789012\n"
    "sso_role_name = Other\n"
    "[sso-session corp]\n"
    "sso_start_url = " SSO_URL "\n"
    "sso_region = eu-central-1\n"
    "sso_registration_scopes = sso:account:access\n"
    "[profile viasso]\n"
    "role_arn = " ROLE_ARN "\n"
    "source_profile = corp\n"
    "[profile nosect]\n"
    "sso_session = gone\n"
    "sso_account_id = 123456789012\n"
    "sso_role_name = MetaflowRole\n"
    "[profile noacct]\n"
    "sso_session = corp\n"
    "sso_role_name = MetaflowRole\n"
    "[profile clash]\n"
    "sso_session = corp\n"
    "sso_region = us-west-2\n"
    "sso_account_id = 123456789012\n"
    "sso_role_name = MetaflowRole\n"
    "[profile badregion]\n"
    "sso_start_url = " SSO_URL "\n"
    "sso_region = eu_central_1\n"
    "sso_account_id = 123456789012\n"
    "sso_role_name = MetaflowRole\n";

/* A token cache as "aws sso login" writes it; with the client
 * registration and refresh token of an sso-session when `refreshable`. */
static void write_cache(const char *path, const char *token, int64_t expires_in, bool refreshable)
{
    char exp[32], reg[32], text[1024];
    iso_in(exp, sizeof exp, expires_in);
    iso_in(reg, sizeof reg, 90 * 86400);
    int n = snprintf(text, sizeof text,
                     "{\"startUrl\": \"" SSO_URL "\", \"region\": \"eu-central-1\", "
                     "\"accessToken\": \"%s\", \"expiresAt\": \"%s\"",
                     token, exp);
    if (refreshable)
        n += snprintf(text + n, sizeof text - (size_t)n,
                      ", \"clientId\": \"client-1\", \"clientSecret\": \"sEcReTclient\", "
                      "\"refreshToken\": \"refresh-1\", \"registrationExpiresAt\": \"%s\"",
                      reg);
    snprintf(text + n, sizeof text - (size_t)n, "}\n");
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void cache_dirs(bool make)
{
    static const char *const dirs[] = { "home/.aws", "home/.aws/sso", "home/.aws/sso/cache" };
    char p[256];
    for (size_t i = 0; i < 3; i++) {
        path_in(p, sizeof p, dirs[make ? i : 2 - i]);
        if (make)
            assert_int_equal(mkdir(p, 0700), 0);
        else
            rmdir(p);
    }
}

static void sso(void **state)
{
    (void)state;
    char legacy[256], corp[256], buf[2048];
    cache_dirs(true);
    snprintf(legacy, sizeof legacy,
             "%s/.aws/sso/cache/2b829a45f04c9828cb45b7d092d8e4aa30818393.json", getenv("HOME"));
    snprintf(corp, sizeof corp,
             "%s/.aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json", getenv("HOME"));
    write_file("config", SSO_CONFIG);
    set_path("AWS_CONFIG_FILE", "config");
    set_url("AWS_ENDPOINT_URL_SSO", "/sso/ok");
    set_url("AWS_ENDPOINT_URL_SSO_OIDC", "/oidc/ok");
    mf__s3cfg cfg = MF__S3CFG_INIT;

    /* the legacy form: the cache is named by the start URL's SHA-1 */
    setenv("AWS_PROFILE", "legacy", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "sso");
    assert_string_equal(cfg.sso_cache_file, legacy);
    assert_null(cfg.sso_session);
    assert_string_equal(cfg.sso_region, "eu-central-1");
    const char *msg = fetch_err(&cfg, MF_EACCESS);
    has(msg, "sso: profile 'legacy' has not logged in to IAM Identity Center");
    has(msg, "run 'aws sso login --profile legacy'");
    write_cache(legacy, "sso-access-1", 3600, false);
    fetch_ok(&cfg);
    assert_string_equal(cfg.source, "sso");
    assert_string_equal(cfg.access_key_id, "ASIASSOEXAMPLE");
    assert_string_equal(cfg.secret_access_key, "sEcReTsso");
    assert_string_equal(cfg.session_token, "tOkEnsso");
    assert_int_equal(cfg.expiration, SSO_EXP);
    assert_true(mf__s3creds_refreshable(&cfg));
    has(last_request(SSO_PORTAL), "token=sso-access-1\n");
    /* legacy tokens are never refreshed: an expired one is an error, and
     * the portal is not asked */
    write_cache(legacy, "sso-access-1", -60, true);
    long before = hits(SSO_PORTAL), oidc0 = hits("/oidc/ok/token");
    msg = fetch_err(&cfg, MF_EACCESS);
    has(msg, "the IAM Identity Center session of profile 'legacy' has expired: run 'aws sso "
             "login --profile legacy'");
    assert_int_equal(hits(SSO_PORTAL), before);
    assert_int_equal(hits("/oidc/ok/token"), oidc0);
    /* a token the portal does not know */
    write_cache(legacy, "sso-stale", 3600, false);
    msg = fetch_err(&cfg, MF_EACCESS);
    has(msg, "refused the token of profile 'legacy' (HTTP 401: Session token not found or "
             "invalid): run 'aws sso login --profile legacy'");

    /* an sso-session: the cache is named by the session's SHA-1; a token
     * good for two hours is used as it is */
    setenv("AWS_PROFILE", "corp", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.sso_cache_file, corp);
    assert_string_equal(cfg.sso_session, "corp");
    assert_string_equal(cfg.sso_start_url, SSO_URL);
    write_cache(corp, "sso-access-1", 7200, true);
    long oidc = hits("/oidc/ok/token");
    fetch_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "ASIASSOEXAMPLE");
    assert_int_equal(hits("/oidc/ok/token"), oidc);

    /* within 15 minutes of its expiry it is refreshed through SSO-OIDC, and
     * the cache rewritten: new token and refresh token, the rest kept */
    write_cache(corp, "sso-access-1", 300, true);
    fetch_ok(&cfg);
    assert_int_equal(hits("/oidc/ok/token"), oidc + 1);
    has(last_request(SSO_PORTAL), "token=sso-access-2\n");
    has(last_request("/oidc/ok/token"), "form.refreshToken=refresh-1\n");
    FILE *fp = fopen(corp, "r");
    assert_non_null(fp);
    buf[fread(buf, 1, sizeof buf - 1, fp)] = '\0';
    fclose(fp);
    has(buf, "\"accessToken\": \"sso-access-2\"");
    has(buf, "\"refreshToken\": \"refresh-2\"");
    has(buf, "\"clientSecret\": \"sEcReTclient\"");
    has(buf, "\"startUrl\": \"" SSO_URL "\"");
    char *e = strstr(buf, "\"expiresAt\": \"");
    assert_non_null(e);
    int64_t exp = 0;
    e += strlen("\"expiresAt\": \"");
    e[20] = '\0';
    assert_int_equal(mf__s3cfg_parse_time(e, &exp), MF_OK);
    assert_true(llabs((long long)(exp - (int64_t)time(NULL) - 3600)) < 120);
    struct stat st;
    assert_int_equal(stat(corp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* nothing left beside it */
    char dir[256];
    path_in(dir, sizeof dir, "home/.aws/sso/cache");
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    int entries = 0;
    for (struct dirent *de; (de = readdir(dp));)
        entries += de->d_name[0] != '.';
    closedir(dp);
    assert_int_equal(entries, 2); /* the legacy and the session caches */

    /* a refresh that fails while the token still works: the old token */
    set_url("AWS_ENDPOINT_URL_SSO_OIDC", "/oidc/fail");
    load_ok(&cfg);
    write_cache(corp, "sso-access-1", 300, true);
    fetch_ok(&cfg);
    has(last_request(SSO_PORTAL), "token=sso-access-1\n");
    /* ... and once it has expired, the error says both */
    write_cache(corp, "sso-access-1", -10, true);
    msg = fetch_err(&cfg, MF_EACCESS);
    has(msg, "session of profile 'corp' has expired and could not be refreshed: SSO-OIDC at");
    has(msg, "refused to refresh the token (HTTP 400: invalid_grant)");
    has(msg, "run 'aws sso login --profile corp'");
    set_url("AWS_ENDPOINT_URL_SSO_OIDC", "/oidc/ok");

    /* a role the user may not take */
    setenv("AWS_PROFILE", "norole", 1);
    write_cache(corp, "sso-access-1", 7200, true);
    msg = fetch_err(&cfg, MF_EACCESS);
    has(msg, "refused role 'Other' of account '123456789012' (HTTP 403: No access)");

    /* a role assumed with IAM Identity Center credentials */
    setenv("AWS_PROFILE", "viasso", 1);
    set_url("AWS_ENDPOINT_URL_STS", "/sts/ok");
    load_ok(&cfg);
    assert_string_equal(cfg.role_source->pending, "sso");
    fetch_ok(&cfg);
    has_role_creds(&cfg, "ASIAROLEEXAMPLE", ROLE_EXP);
    has(last_request("/sts/ok"), "key=ASIASSOEXAMPLE\n");

    /* a damaged cache: no secret in the message */
    fp = fopen(corp, "w");
    assert_non_null(fp);
    fputs("{\"accessToken\": \"sEcReTcut", fp);
    fclose(fp);
    setenv("AWS_PROFILE", "corp", 1);
    msg = fetch_err(&cfg, MF_EINVAL);
    has(msg, "is not valid JSON");

    /* settings that cannot work fail at load */
    static const char *const bad[][2] = {
        { "nosect", "AWS profile 'nosect': its sso_session 'gone' has no [sso-session gone] "
                    "section" },
        { "noacct", "AWS profile 'noacct' uses IAM Identity Center but has no sso_account_id "
                    "(in the profile or its sso-session)" },
        { "clash", "AWS profile 'clash': its sso_region is not the one of [sso-session corp]" },
        { "badregion", "sso_region 'eu_central_1' is not a valid region name" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("AWS_PROFILE", bad[i][0], 1);
        has(load_err(&cfg), bad[i][1]);
    }
    mf__s3cfg_dispose(&cfg);
    unlink(legacy);
    unlink(corp);
    cache_dirs(false);
}

/* ---- secrets out of core dumps */

/* Whether the mapping holding `p` is marked "dd" (MADV_DONTDUMP: left out
 * of core dumps) in /proc/self/smaps. */
static bool dontdump(const void *p)
{
    FILE *fp = fopen("/proc/self/smaps", "r");
    assert_non_null(fp);
    char line[512];
    bool inside = false, found = false, dd = false;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, fp)) {
        unsigned long lo, hi;
        char c;
        if (sscanf(line, "%lx-%lx %c", &lo, &hi, &c) == 3 && strchr(line, '-') < strchr(line, ' ')) {
            inside = a >= lo && a < hi;
            found = found || inside;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            dd = strstr(line, " dd") != NULL;
            break;
        }
    }
    fclose(fp);
    assert_true(found);
    return dd;
}

static void secrets_not_dumped(void **state)
{
    (void)state;
    mf__s3cfg cfg = MF__S3CFG_INIT;
    char *heap = strdup("an ordinary string");
    assert_false(dontdump(heap)); /* the check itself can tell */
    free(heap);

    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "sEcReTENV", 1);
    setenv("AWS_SESSION_TOKEN", "tOkEnENV", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.secret_access_key, "sEcReTENV");
    assert_true(dontdump(cfg.access_key_id));
    assert_true(dontdump(cfg.secret_access_key));
    assert_true(dontdump(cfg.session_token));
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");

    write_file("credentials", "[default]\naws_access_key_id = AKIDFILE\n"
                              "aws_secret_access_key = sEcReTFILE\n");
    set_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    load_ok(&cfg);
    assert_string_equal(cfg.secret_access_key, "sEcReTFILE");
    assert_true(dontdump(cfg.secret_access_key));
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");

    /* fetched ones, and the container's authorization token */
    set_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/container/auth");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_AUTH, 1);
    load_ok(&cfg);
    assert_true(dontdump(cfg.container_token));
    fetch_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "ASIACONTAINEREXAMPLE");
    assert_true(dontdump(cfg.access_key_id));
    assert_true(dontdump(cfg.secret_access_key));
    assert_true(dontdump(cfg.session_token));
    mf__s3cfg_dispose(&cfg);
}

/* Fetches into separate configurations from several threads at once. */
typedef struct job {
    mf__s3cfg cfg;
    int rc;
    char msg[256];
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    j->rc = mf__s3creds_fetch(&j->cfg);
    if (j->rc != MF_OK)
        snprintf(j->msg, sizeof j->msg, "%s", mf_error_last());
    return NULL;
}

static void threads(void **state)
{
    (void)state;
    enum { N = 8 };
    job jobs[N];
    pthread_t th[N];
    write_file("token", WEB_TOKEN);
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "10", 1); /* eight at once on a loaded machine */
    for (int i = 0; i < N; i++) {
        unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
        unsetenv("AWS_ROLE_ARN");
        if (i % 3 == 0) {
            set_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/container/open");
        } else if (i % 3 == 1) {
            set_path("AWS_WEB_IDENTITY_TOKEN_FILE", "token");
            setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
            set_url("AWS_ENDPOINT_URL_STS", "/sts/ok");
        } else {
            set_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/imds/ok");
        }
        jobs[i].cfg = (mf__s3cfg)MF__S3CFG_INIT;
        load_ok(&jobs[i].cfg);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].rc != MF_OK)
            fail_msg("job %d: %s", i, jobs[i].msg);
        static const char *const want[] = { "ASIACONTAINEREXAMPLE", "ASIASTSEXAMPLE",
                                            "ASIAIMDSEXAMPLE" };
        assert_string_equal(jobs[i].cfg.access_key_id, want[i % 3]);
        mf__s3cfg_dispose(&jobs[i].cfg);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PYTHON3 creds_server.py\n", argv[0]);
        return 2;
    }
    g_python = argv[1];
    g_script = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(web_identity_env, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(sts_url, setup, teardown),
        cmocka_unit_test_setup_teardown(container, setup, teardown),
        cmocka_unit_test_setup_teardown(container_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(imds, setup, teardown),
        cmocka_unit_test_setup_teardown(imds_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(process, setup, teardown),
        cmocka_unit_test(time_offsets),
        cmocka_unit_test_setup_teardown(assume_role, setup, teardown),
        cmocka_unit_test_setup_teardown(assume_role_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(sso, setup, teardown),
        cmocka_unit_test_setup_teardown(not_fetchable, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets_not_dumped, setup, teardown),
        cmocka_unit_test_setup_teardown(threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
