/*
 * Unit tests of lib/datastore/s3/config.c: credentials, region, endpoint and
 * addressing from the environment and the AWS shared files. Every test runs
 * with all AWS_* variables it might read unset and HOME pointing at a fresh
 * temporary directory; the original environment is restored afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "datastore/s3/config.h"

static const char *const VARS[] = {
    "HOME", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
};
#define NVARS (sizeof VARS / sizeof VARS[0])

typedef struct fixture {
    char *saved[NVARS];
    char dir[64];
    char cred[128], conf[128];
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
    strcpy(f->dir, "/tmp/mf_s3cfg_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cred, sizeof f->cred, "%s/.aws/credentials", f->dir);
    snprintf(f->conf, sizeof f->conf, "%s/.aws/config", f->dir);
    char aws[96];
    snprintf(aws, sizeof aws, "%s/.aws", f->dir);
    assert_int_equal(mf__mkdir_p(aws), MF_OK);
    setenv("HOME", f->dir, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char aws[96];
    unlink(f->cred);
    unlink(f->conf);
    snprintf(aws, sizeof aws, "%s/.aws/other", f->dir);
    unlink(aws);
    snprintf(aws, sizeof aws, "%s/.aws", f->dir);
    rmdir(aws);
    rmdir(f->dir);
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

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}
#define WRITE(path, s) write_file((path), (s), strlen(s))

static const char CRED[] = "# shared credentials\n"
                           "[default]\n"
                           "aws_access_key_id = AKIDDEFAULTCRED\n"
                           "aws_secret_access_key = sEcReTDEFAULTCRED\n"
                           "\n"
                           "; another comment\n"
                           "[dev]\r\n"
                           "  AWS_Access_Key_Id=AKIDDEVCRED   \r\n"
                           "aws_secret_access_key   =   sEcReTDEVCRED # inline comment\r\n"
                           "aws_session_token = tOkEnDEV\r\n";

static const char CONF[] = "[default]\n"
                           "region = eu-west-1\n"
                           "[profile   dev] # dev account\n"
                           "region = ap-south-1\n"
                           "s3 =\n"
                           "  addressing_style = path\n"
                           "  # comment inside\n"
                           "  endpoint_url = http://127.0.0.1:9000\n"
                           "[profile cfgonly]\n"
                           "aws_access_key_id = AKIDCFGONLY\n"
                           "aws_secret_access_key = sEcReTCFGONLY\n"
                           "endpoint_url = https://global.example.com\n"
                           "[profile svc]\n"
                           "services = mine\n"
                           "endpoint_url = https://global.example.com\n"
                           "[services mine]\n"
                           "s3 =\n"
                           "    endpoint_url = https://s3.example.com\n"
                           "[profile role]\n"
                           "role_arn = arn:aws:iam::123456789012:role/r\n"
                           "source_profile = default\n"
                           "[profile web]\n"
                           "role_arn = arn:aws:iam::123456789012:role/r\n"
                           "web_identity_token_file = /tmp/token\n"
                           "[profile sso]\n"
                           "sso_session = corp\n"
                           "sso_account_id = 123456789012\n"
                           "sso_role_name = Metaflow\n"
                           "[sso-session corp]\n"
                           "sso_start_url = https://d-123.awsapps.com/start\n"
                           "sso_region = eu-central-1\n"
                           "[profile proc]\n"
                           "credential_process = /bin/true\n"
                           "[profile empty]\n";

static void load_ok(mf__s3cfg *cfg)
{
    int rc = mf__s3cfg_load(cfg);
    if (rc != MF_OK)
        fail_msg("load: %s", mf_error_last());
}

/* The message of a failed load, which must never contain a secret. */
static const char *load_err(mf__s3cfg *cfg, int want)
{
    assert_int_equal(mf__s3cfg_load(cfg), want);
    const char *msg = mf_error_last();
    static const char *const secrets[] = { "sEcReT", "AKID", "tOkEn" };
    for (size_t i = 0; i < 3; i++)
        if (strstr(msg, secrets[i]))
            fail_msg("secret in message: %s", msg);
    assert_null(cfg->secret_access_key);
    return msg;
}

static void nothing_found(void **state)
{
    (void)state;
    mf__s3cfg cfg = MF__S3CFG_INIT;
    load_ok(&cfg);
    assert_null(cfg.access_key_id);
    assert_null(cfg.source);
    assert_string_equal(cfg.pending, "imds");
    assert_string_equal(cfg.profile, "default");
    assert_string_equal(cfg.region, "us-east-1");
    assert_null(cfg.endpoint_url);
    assert_int_equal(cfg.addressing, MF__S3CFG_ADDRESSING_AUTO);
    mf__s3cfg_dispose(&cfg);

    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "container");
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "container");
    mf__s3cfg_dispose(&cfg);
    mf__s3cfg_dispose(&cfg); /* twice is fine */
    mf__s3cfg_dispose(NULL);
}

static void environment_first(void **state)
{
    fixture *f = *state;
    WRITE(f->cred, CRED);
    WRITE(f->conf, CONF);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "sEcReTENV", 1);
    setenv("AWS_SESSION_TOKEN", "tOkEnENV", 1);
    setenv("AWS_CREDENTIAL_EXPIRATION", "2026-11-27T06:00:00Z", 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/tmp/token", 1); /* env keys still win */
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
    mf__s3cfg cfg = MF__S3CFG_INIT;
    load_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "AKIDENV");
    assert_string_equal(cfg.secret_access_key, "sEcReTENV");
    assert_string_equal(cfg.session_token, "tOkEnENV");
    assert_int_equal(cfg.expiration, 1795759200);
    assert_string_equal(cfg.source, "environment");
    assert_null(cfg.pending);
    assert_string_equal(cfg.region, "eu-west-1");

    setenv("AWS_CREDENTIAL_EXPIRATION", "2026-11-27T06:00:00.123+00:00", 1);
    load_ok(&cfg);
    assert_int_equal(cfg.expiration, 1795759200);
    setenv("AWS_CREDENTIAL_EXPIRATION", "tomorrow", 1);
    assert_non_null(strstr(load_err(&cfg, MF_EINVAL), "AWS_CREDENTIAL_EXPIRATION"));
    unsetenv("AWS_CREDENTIAL_EXPIRATION");

    /* an empty variable counts as unset */
    setenv("AWS_SESSION_TOKEN", "", 1);
    load_ok(&cfg);
    assert_null(cfg.session_token);
    assert_int_equal(cfg.expiration, 0);
    mf__s3cfg_dispose(&cfg);
}

static void environment_half_set(void **state)
{
    fixture *f = *state;
    WRITE(f->cred, CRED);
    mf__s3cfg cfg = MF__S3CFG_INIT;
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    const char *msg = load_err(&cfg, MF_EINVAL);
    assert_non_null(strstr(msg, "AWS_SECRET_ACCESS_KEY is not"));
    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SECRET_ACCESS_KEY", "sEcReTENV", 1);
    msg = load_err(&cfg, MF_EINVAL);
    assert_non_null(strstr(msg, "AWS_ACCESS_KEY_ID is not"));
    assert_null(cfg.region);
    /* both unset or empty: ignored, the file is used */
    setenv("AWS_SECRET_ACCESS_KEY", "", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.source, "shared-credentials:default");
    mf__s3cfg_dispose(&cfg);
}

static void shared_files_and_profiles(void **state)
{
    fixture *f = *state;
    WRITE(f->cred, CRED);
    WRITE(f->conf, CONF);
    mf__s3cfg cfg = MF__S3CFG_INIT;

    load_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "AKIDDEFAULTCRED");
    assert_string_equal(cfg.secret_access_key, "sEcReTDEFAULTCRED");
    assert_null(cfg.session_token);
    assert_string_equal(cfg.source, "shared-credentials:default");
    assert_string_equal(cfg.region, "eu-west-1");

    setenv("AWS_PROFILE", "dev", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.profile, "dev");
    assert_string_equal(cfg.access_key_id, "AKIDDEVCRED");
    assert_string_equal(cfg.secret_access_key, "sEcReTDEVCRED"); /* inline comment cut */
    assert_string_equal(cfg.session_token, "tOkEnDEV");
    assert_string_equal(cfg.source, "shared-credentials:dev");
    assert_string_equal(cfg.region, "ap-south-1");
    assert_string_equal(cfg.endpoint_url, "http://127.0.0.1:9000");
    assert_int_equal(cfg.addressing, MF__S3CFG_ADDRESSING_PATH);

    setenv("AWS_PROFILE", "cfgonly", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "AKIDCFGONLY");
    assert_string_equal(cfg.source, "shared-config:cfgonly");
    assert_string_equal(cfg.region, "us-east-1");
    assert_string_equal(cfg.endpoint_url, "https://global.example.com");

    setenv("AWS_PROFILE", "empty", 1);
    load_ok(&cfg);
    assert_null(cfg.access_key_id);
    assert_string_equal(cfg.pending, "imds");

    setenv("AWS_PROFILE", "nosuch", 1);
    const char *msg = load_err(&cfg, MF_EINVAL);
    assert_non_null(strstr(msg, "'nosuch'"));

    /* the credentials file wins over the config file for [default] */
    unsetenv("AWS_PROFILE");
    WRITE(f->conf, "[profile default]\naws_access_key_id=AKIDX\naws_secret_access_key=sEcReTX\n");
    unlink(f->cred);
    load_ok(&cfg);
    assert_string_equal(cfg.source, "shared-config:default");
    assert_string_equal(cfg.access_key_id, "AKIDX");
    mf__s3cfg_dispose(&cfg);
}

static void file_locations(void **state)
{
    fixture *f = *state;
    char other[128];
    snprintf(other, sizeof other, "%s/.aws/other", f->dir);
    WRITE(f->cred, CRED);
    WRITE(other, "[default]\naws_access_key_id=AKIDOTHER\naws_secret_access_key=sEcReTOTHER\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/other", 1);
    mf__s3cfg cfg = MF__S3CFG_INIT;
    load_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "AKIDOTHER");
    setenv("AWS_SHARED_CREDENTIALS_FILE", other, 1);
    load_ok(&cfg);
    assert_string_equal(cfg.access_key_id, "AKIDOTHER");

    WRITE(other, "[default]\nregion = sa-east-1\n");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    setenv("AWS_CONFIG_FILE", other, 1);
    load_ok(&cfg);
    assert_string_equal(cfg.region, "sa-east-1");
    assert_string_equal(cfg.access_key_id, "AKIDDEFAULTCRED");

    /* no HOME and no variables: nothing is read */
    unsetenv("AWS_CONFIG_FILE");
    unsetenv("HOME");
    load_ok(&cfg);
    assert_string_equal(cfg.pending, "imds");
    mf__s3cfg_dispose(&cfg);
}

static void pending_sources(void **state)
{
    fixture *f = *state;
    WRITE(f->cred, CRED);
    WRITE(f->conf, CONF);
    mf__s3cfg cfg = MF__S3CFG_INIT;

    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token", 1);
    load_ok(&cfg); /* without AWS_ROLE_ARN: not web identity */
    assert_string_equal(cfg.source, "shared-credentials:default");
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
    load_ok(&cfg); /* web identity comes before the shared files, as in botocore */
    assert_null(cfg.access_key_id);
    assert_null(cfg.source);
    assert_string_equal(cfg.pending, "web-identity");
    assert_string_equal(cfg.region, "eu-west-1");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");

    static const char *const cases[][2] = {
        { "role", "assume-role" }, { "web", "web-identity" }, { "sso", "sso" }, { "proc", "process" }
    };
    for (size_t i = 0; i < 4; i++) {
        setenv("AWS_PROFILE", cases[i][0], 1);
        load_ok(&cfg);
        assert_null(cfg.access_key_id);
        assert_string_equal(cfg.pending, cases[i][1]);
    }
    mf__s3cfg_dispose(&cfg);
}

static void partial_file_keys(void **state)
{
    fixture *f = *state;
    WRITE(f->cred, "[default]\naws_secret_access_key = sEcReTONLY\n");
    mf__s3cfg cfg = MF__S3CFG_INIT;
    const char *msg = load_err(&cfg, MF_EINVAL);
    assert_non_null(strstr(msg, f->cred));
    assert_non_null(strstr(msg, "aws_access_key_id is not"));
    mf__s3cfg_dispose(&cfg);
}

static void malformed(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        { "[default]\naws_access_key_id = AKIDBAD\nsEcReTNOEQUALS\n", "line 3: expected" },
        { "aws_secret_access_key = sEcReTTOP\n", "line 1: key outside" },
        { "[default\naws_secret_access_key = sEcReTX\n", "line 1: section header" },
        { "[]\n", "line 1: empty section" },
        { "[default] x\n", "line 1: text after" },
        { "[default]\n = sEcReTNOKEY\n", "line 2: empty key" },
        { "[default]\nregion = x\n  endpoint_url = sEcReTINDENT\n", "line 3: indented" },
        { "[default]\n= sEcReTNOKEY\n", "line 2: empty key" },
        { "[default]\ns3 =\n  tOkEnNOEQ\n", "line 3: expected" },
    };
    mf__s3cfg cfg = MF__S3CFG_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        WRITE(f->cred, cases[i].text);
        const char *msg = load_err(&cfg, MF_EINVAL);
        assert_non_null(strstr(msg, f->cred));
        if (!strstr(msg, cases[i].want))
            fail_msg("case %zu: %s", i, msg);
    }

    /* NUL byte, on line 2 */
    write_file(f->cred, "[default]\nkey = a\0b\n", 19);
    assert_non_null(strstr(load_err(&cfg, MF_EINVAL), "line 2: NUL"));

    /* line too long (the limit itself is fine) */
    size_t n = MF__S3CFG_MAX_LINE + 1;
    char *big = malloc(MF__S3CFG_MAX_FILE + 2);
    assert_non_null(big);
    memcpy(big, "[default]\nk=", 12);
    memset(big + 12, 'v', n - 2);
    memcpy(big + 10 + n, "\n", 1);
    write_file(f->cred, big, 11 + n);
    assert_non_null(strstr(load_err(&cfg, MF_EINVAL), "line 2: line too long"));
    write_file(f->cred, big, 10 + n); /* 16385-byte line without its newline */
    assert_int_equal(mf__s3cfg_load(&cfg), MF_EINVAL);
    big[10 + n - 1] = '\n';
    write_file(f->cred, big, 10 + n); /* exactly MF__S3CFG_MAX_LINE, then newline */
    load_ok(&cfg);

    /* size: exactly 1 MiB of comments is fine, one byte more is not */
    memset(big, '\n', MF__S3CFG_MAX_FILE + 1);
    big[0] = '#';
    write_file(f->cred, big, MF__S3CFG_MAX_FILE);
    load_ok(&cfg);
    write_file(f->cred, big, MF__S3CFG_MAX_FILE + 1);
    assert_non_null(strstr(load_err(&cfg, MF_EINVAL), "larger than"));
    free(big);

    /* a directory where the file should be */
    unlink(f->cred);
    assert_int_equal(mf__mkdir_p(f->cred), MF_OK);
    assert_int_equal(mf__s3cfg_load(&cfg), MF_EIO);
    rmdir(f->cred);

    /* malformed config file: named as well */
    WRITE(f->conf, "[default]\nregion\n");
    assert_non_null(strstr(load_err(&cfg, MF_EINVAL), f->conf));
    mf__s3cfg_dispose(&cfg);
}

static void region(void **state)
{
    fixture *f = *state;
    WRITE(f->conf, CONF);
    mf__s3cfg cfg = MF__S3CFG_INIT;
    setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.region, "us-west-2");
    setenv("AWS_REGION", "eu-central-1", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.region, "eu-central-1");
    setenv("AWS_REGION", "bad/region", 1);
    assert_non_null(strstr(load_err(&cfg, MF_EINVAL), "from AWS_REGION"));
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    WRITE(f->conf, "[default]\nregion = -x\n");
    assert_non_null(strstr(load_err(&cfg, MF_EINVAL), f->conf));
    mf__s3cfg_dispose(&cfg);
}

static void endpoint(void **state)
{
    fixture *f = *state;
    WRITE(f->conf, CONF);
    mf__s3cfg cfg = MF__S3CFG_INIT;
    setenv("AWS_PROFILE", "svc", 1); /* [services mine] s3 beats the global one */
    load_ok(&cfg);
    assert_string_equal(cfg.endpoint_url, "https://s3.example.com");
    assert_int_equal(cfg.addressing, MF__S3CFG_ADDRESSING_AUTO);

    setenv("AWS_ENDPOINT_URL", "http://env-global:4566", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.endpoint_url, "http://env-global:4566");
    setenv("AWS_ENDPOINT_URL_S3", "http://env-s3:9000", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.endpoint_url, "http://env-s3:9000");
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    load_ok(&cfg);
    assert_null(cfg.endpoint_url);
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    setenv("AWS_ENDPOINT_URL_S3", "ftp://x", 1);
    assert_non_null(strstr(load_err(&cfg, MF_EINVAL), "AWS_ENDPOINT_URL_S3"));
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_ENDPOINT_URL");

    WRITE(f->conf, "[default]\ns3 =\n  addressing_style = sideways\n");
    unsetenv("AWS_PROFILE");
    assert_non_null(strstr(load_err(&cfg, MF_EINVAL), "addressing_style"));
    WRITE(f->conf, "[default]\ns3 =\n  addressing_style = virtual\nregion = us-west-1\n");
    load_ok(&cfg);
    assert_int_equal(cfg.addressing, MF__S3CFG_ADDRESSING_VIRTUAL);
    assert_string_equal(cfg.region, "us-west-1");
    mf__s3cfg_dispose(&cfg);
}

static void path_style(void **state)
{
    (void)state;
    assert_true(mf__s3cfg_bucket_dns_compatible("my-bucket"));
    assert_true(mf__s3cfg_bucket_dns_compatible("a.b.c"));
    assert_false(mf__s3cfg_bucket_dns_compatible("ab"));
    assert_false(mf__s3cfg_bucket_dns_compatible("My_Bucket"));
    assert_false(mf__s3cfg_bucket_dns_compatible("a..b"));
    assert_false(mf__s3cfg_bucket_dns_compatible("-ab"));
    assert_false(mf__s3cfg_bucket_dns_compatible("ab-"));
    assert_false(mf__s3cfg_bucket_dns_compatible("a.-b"));
    assert_false(mf__s3cfg_bucket_dns_compatible("192.168.1.1"));
    assert_false(mf__s3cfg_bucket_dns_compatible(NULL));

    mf__s3cfg cfg = MF__S3CFG_INIT;
    assert_false(mf__s3cfg_use_path_style(&cfg, "my-bucket"));
    assert_true(mf__s3cfg_use_path_style(&cfg, "My_Bucket"));
    assert_true(mf__s3cfg_use_path_style(&cfg, "a.b.c")); /* https + dot */
    cfg.endpoint_url = (char *)"http://minio.local:9000";
    assert_false(mf__s3cfg_use_path_style(&cfg, "a.b.c"));
    assert_false(mf__s3cfg_use_path_style(&cfg, "my-bucket"));
    assert_true(mf__s3cfg_use_path_style(&cfg, "UPPER"));
    cfg.endpoint_url = (char *)"http://127.0.0.1:9000";
    assert_true(mf__s3cfg_use_path_style(&cfg, "my-bucket"));
    cfg.endpoint_url = (char *)"http://localhost:4566/";
    assert_true(mf__s3cfg_use_path_style(&cfg, "my-bucket"));
    cfg.endpoint_url = (char *)"http://[::1]:9000";
    assert_true(mf__s3cfg_use_path_style(&cfg, "my-bucket"));
    cfg.addressing = MF__S3CFG_ADDRESSING_VIRTUAL;
    assert_false(mf__s3cfg_use_path_style(&cfg, "my-bucket"));
    cfg.endpoint_url = NULL;
    cfg.addressing = MF__S3CFG_ADDRESSING_PATH;
    assert_true(mf__s3cfg_use_path_style(&cfg, "my-bucket"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nothing_found, setup, teardown),
        cmocka_unit_test_setup_teardown(environment_first, setup, teardown),
        cmocka_unit_test_setup_teardown(environment_half_set, setup, teardown),
        cmocka_unit_test_setup_teardown(shared_files_and_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(file_locations, setup, teardown),
        cmocka_unit_test_setup_teardown(pending_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(partial_file_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(region, setup, teardown),
        cmocka_unit_test_setup_teardown(endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(path_style, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
