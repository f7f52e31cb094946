/* Credentials, region and endpoint for S3 from the environment and the AWS
 * shared files; the order and rules are in config.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config.h"

/* ---- a small INI reader for the AWS shared files */

typedef struct ini_ent {
    const char *section; /* normalised: "default", "profile foo", ... */
    const char *key;     /* lower case; NULL for a section's own marker */
    const char *sub;     /* lower case nested key ("s3 =\n  sub = v"), or NULL */
    const char *value;
} ini_ent;

typedef struct ini {
    const char *path;
    char *text;    /* the file, split in place; may hold secrets */
    size_t len;
    ini_ent *ents;
    size_t n, cap;
} ini;

static void ini_dispose(ini *f)
{
    if (f->text) {
        OPENSSL_cleanse(f->text, f->len + 1);
        free(f->text);
    }
    free(f->ents);
    memset(f, 0, sizeof *f);
}

static int ini_add(ini *f, const char *section, const char *key, const char *sub, const char *value)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 32;
        ini_ent *e = realloc(f->ents, cap * sizeof *e);
        if (!e)
            return mf__error_oom();
        f->ents = e;
        f->cap = cap;
    }
    f->ents[f->n++] = (ini_ent){ section, key, sub, value };
    return MF_OK;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }

static char *trim(char *s)
{
    while (is_ws(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_ws(s[n - 1]))
        s[--n] = '\0';
    return s;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Cut an inline comment: '#' or ';' after whitespace. */
static void cut_comment(char *v)
{
    for (char *p = v; *p; p++) {
        if ((*p == '#' || *p == ';') && p > v && is_ws(p[-1])) {
            *p = '\0';
            break;
        }
    }
}

static int ini_err(const ini *f, size_t line, const char *what)
{
    return mf__error_set(MF_EINVAL, "AWS shared file '%s' line %zu: %s", f->path, line, what);
}

/* Split "key = value" (or "key: value") in place; never echoes the text. */
static int split_kv(const ini *f, size_t line, char *s, char **key, char **value)
{
    char *d = strpbrk(s, "=:");
    if (!d)
        return ini_err(f, line, "expected 'key = value'");
    *d = '\0';
    *key = trim(s);
    if (!**key)
        return ini_err(f, line, "empty key");
    lower(*key);
    cut_comment(d + 1);
    *value = trim(d + 1);
    return MF_OK;
}

static int ini_parse(ini *f)
{
    char *p = f->text, *end = f->text + f->len;
    const char *section = NULL;
    const char *parent = NULL; /* key whose value was empty: nested lines follow */
    bool had_key = false;      /* a key since the section header */
    size_t line = 0;
    int rc;

    if (f->len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        line++;
        if ((size_t)(eol - p) > MF__S3CFG_MAX_LINE)
            return ini_err(f, line, "line too long");
        *eol = '\0';
        if (eol > p && eol[-1] == '\r')
            eol[-1] = '\0';
        bool indented = is_ws(*p);
        char *s = trim(p);
        p = eol + 1;

        if (!*s || *s == '#' || *s == ';')
            continue;
        if (indented && parent) {
            char *k, *v;
            if ((rc = split_kv(f, line, s, &k, &v)) != MF_OK)
                return rc;
            if ((rc = ini_add(f, section, parent, k, v)) != MF_OK)
                return rc;
            continue;
        }
        /* configparser continues the previous value on an indented line;
         * only the "key =" form (nested keys) means anything to AWS. */
        if (indented && had_key)
            return ini_err(f, line, "indented line not under a 'key =' line");
        parent = NULL;
        if (*s == '[') {
            char *close = strrchr(s, ']');
            if (!close)
                return ini_err(f, line, "section header without ']'");
            const char *after = close + 1;
            while (is_ws(*after))
                after++;
            if (*after && *after != '#' && *after != ';')
                return ini_err(f, line, "text after a section header");
            *close = '\0';
            char *name = trim(s + 1);
            if (!*name)
                return ini_err(f, line, "empty section name");
            /* "profile   foo" -> "profile foo" (one space after the type word) */
            char *sp = name;
            while (*sp && !is_ws(*sp))
                sp++;
            if (*sp) {
                char *rest = sp;
                while (is_ws(*rest))
                    rest++;
                *sp++ = ' ';
                memmove(sp, rest, strlen(rest) + 1);
            }
            section = name;
            had_key = false;
            if ((rc = ini_add(f, section, NULL, NULL, NULL)) != MF_OK)
                return rc;
            continue;
        }
        if (!section)
            return ini_err(f, line, "key outside any [section]");
        char *k, *v;
        if ((rc = split_kv(f, line, s, &k, &v)) != MF_OK)
            return rc;
        had_key = true;
        if (!*v)
            parent = k;
        if ((rc = ini_add(f, section, k, NULL, v)) != MF_OK)
            return rc;
    }
    return MF_OK;
}

/* Load and parse `path`; a missing file leaves `f` empty and succeeds. */
static int ini_load(ini *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT || errno == ENOTDIR)
            return MF_OK;
        return mf__error_errno(errno, "cannot open AWS shared file", path);
    }
    /* One byte more than the limit tells "too big" from "exactly 1 MiB". */
    f->text = malloc(MF__S3CFG_MAX_FILE + 2);
    if (!f->text) {
        fclose(fp);
        return mf__error_oom();
    }
    f->len = fread(f->text, 1, MF__S3CFG_MAX_FILE + 1, fp);
    int err = ferror(fp) ? errno : 0;
    fclose(fp);
    f->text[f->len] = '\0';
    if (err)
        return mf__error_errno(err ? err : EIO, "cannot read AWS shared file", path);
    if (f->len > MF__S3CFG_MAX_FILE)
        return mf__error_set(MF_EINVAL, "AWS shared file '%s': larger than %u bytes", path,
                             MF__S3CFG_MAX_FILE);
    const char *nul = memchr(f->text, '\0', f->len);
    if (nul) {
        size_t line = 1;
        for (const char *q = f->text; q < nul; q++)
            line += *q == '\n';
        return ini_err(f, line, "NUL byte");
    }
    return ini_parse(f);
}

/* The last value of key (and nested sub) in section, or NULL. */
static const char *ini_get(const ini *f, const char *section, const char *key, const char *sub)
{
    for (size_t i = f->n; i-- > 0;) {
        const ini_ent *e = &f->ents[i];
        if (e->key && strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0 &&
            (sub ? e->sub && strcmp(e->sub, sub) == 0 : !e->sub))
            return e->value;
    }
    return NULL;
}

static bool ini_has(const ini *f, const char *section)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->ents[i].section, section) == 0)
            return true;
    return false;
}

/* ---- resolution */

/* As dup_into, for a secret kept out of core dumps (core.h). */
static int secret_into(char **out, const char *s)
{
    if (!s)
        return MF_OK;
    *out = mf__secret_dup(s, strlen(s));
    return *out ? MF_OK : mf__error_oom();
}

static int dup_into(char **out, const char *s)
{
    if (!s)
        return MF_OK;
    *out = strdup(s);
    return *out ? MF_OK : mf__error_oom();
}

/* AWS_SHARED_CREDENTIALS_FILE-style path with "~/" expanded, else ~/.aws/<name>;
 * NULL in *out when there is no home to default to. */
static int file_path(mf_buf *out, const char *var, const char *name)
{
    const char *v = mf__getenv(var), *home = mf__getenv("HOME");
    if (v && (v[0] != '~' || (v[1] != '/' && v[1] != '\0')))
        return mf__buf_set(out, v, strlen(v));
    if (!home)
        return MF_OK;
    if (v)
        return mf__buf_printf(out, "%s%s", home, v + 1);
    return mf__buf_printf(out, "%s/.aws/%s", home, name);
}

int mf__s3cfg_parse_time(const char *s, int64_t *out)
{
    return mf__iso8601_parse(s, strlen(s), MF__ISO_ZONES, out) ? MF_OK : MF_EINVAL;
}

/* botocore's rule: 1..63 of [A-Za-z0-9-], no leading/trailing '-', not all digits. */
static bool region_valid(const char *r)
{
    size_t n = strlen(r);
    bool digits = true;
    if (n == 0 || n > 63 || r[0] == '-' || r[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)r[i]) && r[i] != '-')
            return false;
        digits = digits && isdigit((unsigned char)r[i]);
    }
    return !digits;
}

static bool url_valid(const char *u)
{
    const char *h = strncasecmp(u, "https://", 8) == 0  ? u + 8
                    : strncasecmp(u, "http://", 7) == 0 ? u + 7
                                                        : NULL;
    if (!h || !*h || *h == '/')
        return false;
    for (; *u; u++)
        if ((unsigned char)*u <= 0x20 || *u == 0x7f)
            return false;
    return true;
}

typedef struct ctx {
    ini cred, conf;
    mf_buf cred_path, conf_path;
    const char *profile;
    mf_buf conf_section; /* "default" or "profile <name>" */
    /* A source_profile's context: the environment is not read for
     * credentials (botocore's disable_env_vars), and `chain` lists the
     * profiles that led here, the first being AWS_PROFILE's. */
    bool no_env;
    const char *chain[MF__S3CFG_MAX_CHAIN + 1];
    int nchain;
} ctx;

/* The profile's value, the credentials file winning as botocore merges them. */
static const char *prof(const ctx *c, const char *key)
{
    const char *v = ini_get(&c->cred, c->profile, key, NULL);
    if (!v)
        v = ini_get(&c->conf, c->conf_section.ptr, key, NULL);
    return v && *v ? v : NULL;
}

static const char *conf_get(const ctx *c, const char *key, const char *sub)
{
    const char *v = ini_get(&c->conf, c->conf_section.ptr, key, sub);
    if (!v && strcmp(c->profile, "default") == 0)
        v = ini_get(&c->conf, "profile default", key, sub);
    return v && *v ? v : NULL;
}

/* Keys from one file's section; MF_ENOTFOUND when the section has none. */
static int keys_from(mf__s3cfg *out, const ini *f, const char *section, const char *kind,
                     const char *profile)
{
    const char *id = ini_get(f, section, "aws_access_key_id", NULL);
    const char *secret = ini_get(f, section, "aws_secret_access_key", NULL);
    const char *token = ini_get(f, section, "aws_session_token", NULL);
    if (id && !*id)
        id = NULL;
    if (secret && !*secret)
        secret = NULL;
    if (!id && !secret)
        return MF_ENOTFOUND;
    if (!id || !secret)
        return mf__error_set(MF_EINVAL, "AWS shared file '%s' profile '%s': %s is set but %s is not",
                             f->path, profile, id ? "aws_access_key_id" : "aws_secret_access_key",
                             id ? "aws_secret_access_key" : "aws_access_key_id");
    int rc;
    mf_buf src = MF_BUF_INIT;
    if ((rc = secret_into(&out->access_key_id, id)) != MF_OK ||
        (rc = secret_into(&out->secret_access_key, secret)) != MF_OK ||
        (rc = secret_into(&out->session_token, token && *token ? token : NULL)) != MF_OK ||
        (rc = mf__buf_printf(&src, "%s:%s", kind, profile)) != MF_OK) {
        mf_buf_dispose(&src);
        return rc;
    }
    out->source = mf__buf_detach(&src, NULL);
    return MF_OK;
}

/* True when the profile has keys of its own in either file. */
static bool has_keys(const ctx *c)
{
    return prof(c, "aws_access_key_id") || prof(c, "aws_secret_access_key");
}

/* True when the profile assumes a role with a source of credentials (and
 * is not a web identity one). */
static bool assumes_role(const ctx *c)
{
    return prof(c, "role_arn") && !prof(c, "web_identity_token_file") &&
           (prof(c, "source_profile") || prof(c, "credential_source"));
}

/* The environment's keys; MF_ENOTFOUND when neither is set. */
static int keys_from_env(mf__s3cfg *out)
{
    const char *id = mf__getenv("AWS_ACCESS_KEY_ID"), *secret = mf__getenv("AWS_SECRET_ACCESS_KEY");
    int rc;
    if (!id && !secret)
        return MF_ENOTFOUND;
    if (!id || !secret)
        return mf__error_set(MF_EINVAL, "%s is set but %s is not",
                             id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                             id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    const char *exp = mf__getenv("AWS_CREDENTIAL_EXPIRATION");
    if (exp && mf__s3cfg_parse_time(exp, &out->expiration) != MF_OK)
        return mf__error_set(MF_EINVAL, "AWS_CREDENTIAL_EXPIRATION '%s' is not an ISO 8601 time",
                             exp);
    if ((rc = secret_into(&out->access_key_id, id)) != MF_OK ||
        (rc = secret_into(&out->secret_access_key, secret)) != MF_OK ||
        (rc = secret_into(&out->session_token, mf__getenv("AWS_SESSION_TOKEN"))) != MF_OK ||
        (rc = dup_into(&out->source, "environment")) != MF_OK)
        return rc;
    return MF_OK;
}

/* Credentials as botocore's chain finds them (config.h). In a
 * source_profile's context, without the environment, the role step (the
 * caller's) and the container and instance sources. */
static int resolve_credentials(mf__s3cfg *out, const ctx *c)
{
    int rc;
    bool role = !c->no_env && assumes_role(c);
    const char *cs = prof(c, "credential_source");
    /* A profile that assumes its role with the environment's keys uses
     * them for that: AWS_PROFILE names it on purpose. (botocore lets the
     * keys themselves win unless the profile is named in code.) */
    bool env_role = role && cs && strcmp(cs, "Environment") == 0;
    if (!c->no_env && !env_role && (rc = keys_from_env(out)) != MF_ENOTFOUND)
        return rc;
    if (role) {
        out->pending = "assume-role";
        return MF_OK;
    }
    if ((!c->no_env && mf__getenv("AWS_WEB_IDENTITY_TOKEN_FILE") && mf__getenv("AWS_ROLE_ARN")) ||
        (prof(c, "web_identity_token_file") && prof(c, "role_arn"))) {
        out->pending = "web-identity";
        return MF_OK;
    }
    if (prof(c, "sso_session") || prof(c, "sso_start_url")) {
        out->pending = "sso";
        return MF_OK;
    }
    rc = keys_from(out, &c->cred, c->profile, "shared-credentials", c->profile);
    if (rc != MF_ENOTFOUND)
        return rc;
    if (prof(c, "credential_process")) {
        out->pending = "process";
        return MF_OK;
    }
    rc = keys_from(out, &c->conf, c->conf_section.ptr, "shared-config", c->profile);
    if (rc == MF_ENOTFOUND && strcmp(c->profile, "default") == 0)
        rc = keys_from(out, &c->conf, "profile default", "shared-config", c->profile);
    if (rc != MF_ENOTFOUND)
        return rc;
    if (c->no_env)
        return mf__error_set(MF_EINVAL,
                             "AWS profile '%s', the source_profile of profile '%s', has no "
                             "credentials: no keys, role, web identity, sso or credential_process "
                             "in '%s' or '%s'",
                             c->profile, c->chain[c->nchain - 1], c->cred.path, c->conf.path);
    out->pending = mf__getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") ||
                           mf__getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                       ? "container"
                       : "imds";
    return MF_OK;
}

static int resolve_region(mf__s3cfg *out, const ctx *c)
{
    const char *from = "AWS_REGION", *r = mf__getenv("AWS_REGION");
    if (!r) {
        from = "AWS_DEFAULT_REGION";
        r = mf__getenv("AWS_DEFAULT_REGION");
    }
    if (!r) {
        from = c->conf.path;
        r = conf_get(c, "region", NULL);
    }
    if (!r) {
        from = "default";
        r = "us-east-1";
    }
    if (!region_valid(r))
        return mf__error_set(MF_EINVAL, "region '%s' (from %s) is not a valid region name", r, from);
    return dup_into(&out->region, r);
}

/* A service's configured endpoint, botocore's "configured endpoint URLs":
 * AWS_ENDPOINT_URL_<SVC>, AWS_ENDPOINT_URL, the profile's nested
 * "<svc> =\n  endpoint_url", the same in the [services] section the profile
 * names, the profile's endpoint_url. *out stays NULL when none is set or
 * configured endpoints are ignored. */
static int configured_endpoint(char **out, const ctx *c, const char *env_var, const char *svc)
{
    const char *ignore = mf__getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    if (!ignore)
        ignore = conf_get(c, "ignore_configured_endpoint_urls", NULL);
    if (ignore && strcasecmp(ignore, "true") == 0)
        return MF_OK;

    const char *from = env_var, *u = mf__getenv(env_var);
    if (!u) {
        from = "AWS_ENDPOINT_URL";
        u = mf__getenv("AWS_ENDPOINT_URL");
    }
    if (!u) {
        from = c->conf.path;
        u = conf_get(c, svc, "endpoint_url");
    }
    const char *services = conf_get(c, "services", NULL);
    if (!u && services) {
        mf_buf sec = MF_BUF_INIT;
        int rc = mf__buf_printf(&sec, "services %s", services);
        if (rc != MF_OK)
            return rc;
        u = ini_get(&c->conf, sec.ptr, svc, "endpoint_url");
        mf_buf_dispose(&sec);
    }
    if (!u)
        u = conf_get(c, "endpoint_url", NULL);
    if (!u || !*u)
        return MF_OK;
    if (!url_valid(u))
        return mf__error_set(MF_EINVAL, "endpoint URL '%s' (from %s) is not an http(s) URL", u,
                             from ? from : "config");
    return dup_into(out, u);
}

static int resolve_endpoint(mf__s3cfg *out, const ctx *c)
{
    const char *style = conf_get(c, "s3", "addressing_style");
    if (!style || strcasecmp(style, "auto") == 0)
        out->addressing = MF__S3CFG_ADDRESSING_AUTO;
    else if (strcasecmp(style, "virtual") == 0)
        out->addressing = MF__S3CFG_ADDRESSING_VIRTUAL;
    else if (strcasecmp(style, "path") == 0)
        out->addressing = MF__S3CFG_ADDRESSING_PATH;
    else
        return mf__error_set(MF_EINVAL,
                             "AWS config file '%s' profile '%s': s3 addressing_style '%s' is not "
                             "auto, virtual or path",
                             c->conf.path, c->profile, style);
    return configured_endpoint(&out->endpoint_url, c, "AWS_ENDPOINT_URL_S3", "s3");
}

/* A setting from the environment, else from the profile (either file, as
 * botocore merges them); `from` says which, for messages. */
static const char *setting(const ctx *c, const char *var, const char *key, const char **from)
{
    const char *v = var && !c->no_env ? mf__getenv(var) : NULL;
    *from = var;
    if (!v) {
        v = prof(c, key);
        *from = key;
    }
    return v;
}

static int bool_setting(const ctx *c, const char *var, const char *key, bool *out)
{
    const char *from, *v = setting(c, var, key, &from);
    *out = false;
    if (!v || strcasecmp(v, "false") == 0)
        return MF_OK;
    if (strcasecmp(v, "true") == 0) {
        *out = true;
        return MF_OK;
    }
    return mf__error_set(MF_EINVAL, "%s '%s' is neither true nor false", from, v);
}

/* A whole number in [1, max], `def` when unset. */
static int int_setting(const ctx *c, const char *var, const char *key, int32_t def, int32_t max,
                       int32_t *out)
{
    const char *from, *v = setting(c, var, key, &from);
    *out = def;
    if (!v)
        return MF_OK;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 1 || n > max)
        return mf__error_set(MF_EINVAL, "%s '%s' is not a whole number from 1 to %ld", from, v,
                             (long)max);
    *out = (int32_t)n;
    return MF_OK;
}

/* STS's rule for RoleSessionName: 2 to 64 of [A-Za-z0-9_+=,.@-]. */
static int session_name_check(const char *name, const char *from)
{
    size_t n = name ? strlen(name) : 2;
    bool ok = n >= 2 && n <= 64;
    for (size_t i = 0; ok && name && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || strchr("_+=,.@-", name[i]);
    if (!ok)
        return mf__error_set(MF_EINVAL,
                             "%s '%s' is not a role session name (2 to 64 letters, digits and "
                             "_+=,.@-)",
                             from, name);
    return MF_OK;
}

static int resolve_web_identity(mf__s3cfg *out, const ctx *c)
{
    const char *from;
    int rc;
    if ((rc = dup_into(&out->role_arn, setting(c, "AWS_ROLE_ARN", "role_arn", &from))) != MF_OK ||
        (rc = dup_into(&out->web_identity_token_file,
                       setting(c, "AWS_WEB_IDENTITY_TOKEN_FILE", "web_identity_token_file",
                               &from))) != MF_OK ||
        (rc = dup_into(&out->role_session_name,
                       setting(c, "AWS_ROLE_SESSION_NAME", "role_session_name", &from))) != MF_OK ||
        (rc = session_name_check(out->role_session_name, from)) != MF_OK)
        return rc;
    return configured_endpoint(&out->sts_endpoint_url, c, "AWS_ENDPOINT_URL_STS", "sts");
}

/* IAM Identity Center (config.h). */
static int resolve_sso(mf__s3cfg *out, const ctx *c)
{
    const char *name = prof(c, "sso_session");
    const char *url = prof(c, "sso_start_url"), *region = prof(c, "sso_region");
    mf_buf sect = MF_BUF_INIT, key = MF_BUF_INIT;
    int rc = MF_OK;
    if (name) {
        if ((rc = mf__buf_printf(&sect, "sso-session %s", name)) != MF_OK)
            goto done;
        if (!ini_has(&c->conf, sect.ptr)) {
            rc = mf__error_set(MF_EINVAL,
                               "AWS profile '%s': its sso_session '%s' has no [sso-session %s] "
                               "section in '%s'",
                               c->profile, name, name, c->conf.path);
            goto done;
        }
        static const char *const keys[] = { "sso_start_url", "sso_region" };
        const char **vals[] = { &url, &region };
        for (size_t i = 0; i < 2; i++) {
            const char *v = ini_get(&c->conf, sect.ptr, keys[i], NULL);
            if (v && !*v)
                v = NULL;
            if (v && *vals[i] && strcmp(v, *vals[i]) != 0) {
                rc = mf__error_set(MF_EINVAL,
                                   "AWS profile '%s': its %s is not the one of [sso-session %s]",
                                   c->profile, keys[i], name);
                goto done;
            }
            if (v)
                *vals[i] = v;
        }
    }
    const char *account = prof(c, "sso_account_id"), *role = prof(c, "sso_role_name");
    if (!url || !region || !account || !role) {
        rc = mf__error_set(MF_EINVAL,
                           "AWS profile '%s' uses IAM Identity Center but has no %s%s",
                           c->profile,
                           !url       ? "sso_start_url"
                           : !region  ? "sso_region"
                           : !account ? "sso_account_id"
                                      : "sso_role_name",
                           name ? " (in the profile or its sso-session)" : "");
        goto done;
    }
    if (!region_valid(region)) {
        rc = mf__error_set(MF_EINVAL, "AWS profile '%s': sso_region '%s' is not a valid region name",
                           c->profile, region);
        goto done;
    }
    const char *home = mf__getenv("HOME");
    if (!home) {
        rc = mf__error_set(MF_EINVAL,
                           "AWS profile '%s' uses IAM Identity Center, whose token cache is in "
                           "~/.aws/sso/cache, but HOME is not set",
                           c->profile);
        goto done;
    }
    uint8_t md[20];
    char hex[41];
    const char *what = name ? name : url;
    if (!EVP_Digest(what, strlen(what), md, NULL, EVP_sha1(), NULL)) {
        rc = mf__error_set(MF_ERROR, "AWS profile '%s': SHA-1 failed in OpenSSL", c->profile);
        goto done;
    }
    mf__hex(md, sizeof md, hex);
    if ((rc = mf__buf_printf(&key, "%s/.aws/sso/cache/%s.json", home, hex)) != MF_OK ||
        (rc = dup_into(&out->sso_start_url, url)) != MF_OK ||
        (rc = dup_into(&out->sso_region, region)) != MF_OK ||
        (rc = dup_into(&out->sso_account_id, account)) != MF_OK ||
        (rc = dup_into(&out->sso_role_name, role)) != MF_OK ||
        (rc = dup_into(&out->sso_session, name)) != MF_OK ||
        (rc = configured_endpoint(&out->sso_endpoint_url, c, "AWS_ENDPOINT_URL_SSO", "sso")) !=
            MF_OK ||
        (rc = configured_endpoint(&out->sso_oidc_endpoint_url, c, "AWS_ENDPOINT_URL_SSO_OIDC",
                                  "sso-oidc")) != MF_OK)
        goto done;
    out->sso_cache_file = mf__buf_detach(&key, NULL);
done:
    mf_buf_dispose(&sect);
    mf_buf_dispose(&key);
    return rc;
}

static int resolve_container(mf__s3cfg *out)
{
    const char *rel = mf__getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    int rc;
    if (rel) {
        /* botocore pastes it after the address whatever it is; a relative
         * URI that does not start with '/' would change the host. */
        if (rel[0] != '/')
            return mf__error_set(MF_EINVAL,
                                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI '%s' does not start "
                                 "with '/'",
                                 rel);
        mf_buf u = MF_BUF_INIT;
        if ((rc = mf__buf_printf(&u, "http://169.254.170.2%s", rel)) != MF_OK)
            return rc;
        out->container_url = mf__buf_detach(&u, NULL);
    } else if ((rc = dup_into(&out->container_url, mf__getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"))) !=
               MF_OK) {
        return rc;
    }
    if ((rc = dup_into(&out->container_token_file,
                       mf__getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"))) != MF_OK)
        return rc;
    if (!out->container_token_file)
        rc = secret_into(&out->container_token, mf__getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    return rc;
}

static int resolve_imds(mf__s3cfg *out, const ctx *c)
{
    const char *from, *v = mf__getenv("AWS_EC2_METADATA_DISABLED");
    int rc;
    /* botocore: the variable only, and anything but "true" is false */
    out->imds_disabled = v && strcasecmp(v, "true") == 0;
    if ((rc = bool_setting(c, "AWS_EC2_METADATA_V1_DISABLED", "ec2_metadata_v1_disabled",
                           &out->imds_v1_disabled)) != MF_OK ||
        (rc = int_setting(c, "AWS_METADATA_SERVICE_TIMEOUT", "metadata_service_timeout", 1, 3600,
                          &out->imds_timeout_s)) != MF_OK ||
        (rc = int_setting(c, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", "metadata_service_num_attempts",
                          1, 100, &out->imds_attempts)) != MF_OK)
        return rc;
    const char *mode = setting(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
                               "ec2_metadata_service_endpoint_mode", &from);
    if (mode && strcasecmp(mode, "ipv4") != 0 && strcasecmp(mode, "ipv6") != 0)
        return mf__error_set(MF_EINVAL, "%s '%s' is neither IPv4 nor IPv6", from, mode);
    /* A custom endpoint wins over the mode, as in botocore. */
    const char *u = setting(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                            "ec2_metadata_service_endpoint", &from);
    if (u && !url_valid(u))
        return mf__error_set(MF_EINVAL, "%s '%s' is not an http(s) URL", from, u);
    if (!u)
        u = mode && strcasecmp(mode, "ipv6") == 0 ? "http://[fd00:ec2::254]"
                                                   : "http://169.254.169.254";
    return dup_into(&out->imds_endpoint, u);
}

static int resolve_pending(mf__s3cfg *out, const ctx *c, const mf__s3cfg *top);

/* A source_profile's context: the same files, another profile. */
static int source_ctx(ctx *sub, const ctx *c, const char *name)
{
    *sub = *c;
    sub->profile = name;
    sub->no_env = true;
    sub->chain[sub->nchain++] = c->profile;
    sub->conf_section = (mf_buf)MF_BUF_INIT;
    int rc = strcmp(name, "default") == 0 ? mf__buf_puts(&sub->conf_section, "default")
                                          : mf__buf_printf(&sub->conf_section, "profile %s", name);
    if (rc != MF_OK)
        return rc;
    if (!ini_has(&c->cred, name) && !ini_has(&c->conf, sub->conf_section.ptr) &&
        !(strcmp(name, "default") == 0 && ini_has(&c->conf, "profile default")))
        return mf__error_set(MF_EINVAL,
                             "AWS profile '%s': its source_profile '%s' is in neither '%s' nor '%s'",
                             c->profile, name, c->cred.path, c->conf.path);
    return MF_OK;
}

/* The credentials that call AssumeRole for `out` (config.h). */
static int resolve_role_source(mf__s3cfg *out, const ctx *c, const mf__s3cfg *top)
{
    const char *src_profile = prof(c, "source_profile"), *cred_source = prof(c, "credential_source");
    mf__s3cfg *src = calloc(1, sizeof *src);
    if (!src)
        return mf__error_oom();
    *src = (mf__s3cfg)MF__S3CFG_INIT;
    out->role_source = src;
    int rc;
    if ((rc = dup_into(&src->region, out->region)) != MF_OK ||
        (rc = dup_into(&src->ca_bundle, top->ca_bundle)) != MF_OK)
        return rc;
    if (src_profile && cred_source)
        return mf__error_set(MF_EINVAL,
                             "AWS profile '%s' has both source_profile and credential_source; "
                             "set one",
                             c->profile);
    if (cred_source) {
        if ((rc = dup_into(&src->profile, c->profile)) != MF_OK)
            return rc;
        if (strcmp(cred_source, "Environment") == 0) {
            rc = keys_from_env(src);
            if (rc == MF_ENOTFOUND)
                rc = mf__error_set(MF_EINVAL,
                                   "AWS profile '%s': credential_source is Environment but "
                                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
                                   c->profile);
            return rc;
        }
        /* The instance and container settings come from the environment
         * first, even down a chain of source profiles (botocore reads them
         * for the whole session). */
        ctx envc = *c;
        envc.no_env = false;
        if (strcmp(cred_source, "Ec2InstanceMetadata") == 0) {
            src->pending = "imds";
        } else if (strcmp(cred_source, "EcsContainer") == 0) {
            if (!mf__getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") &&
                !mf__getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
                return mf__error_set(MF_EINVAL,
                                     "AWS profile '%s': credential_source is EcsContainer but "
                                     "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
                                     "AWS_CONTAINER_CREDENTIALS_FULL_URI is set",
                                     c->profile);
            src->pending = "container";
        } else {
            return mf__error_set(MF_EINVAL,
                                 "AWS profile '%s': credential_source '%s' is not Environment, "
                                 "Ec2InstanceMetadata or EcsContainer",
                                 c->profile, cred_source);
        }
        return resolve_pending(src, &envc, top);
    }

    ctx sub;
    rc = source_ctx(&sub, c, src_profile);
    if (rc == MF_OK)
        rc = dup_into(&src->profile, src_profile);
    /* botocore: a profile met before is a loop, unless it is this one
     * naming itself and it has keys; a source profile with keys uses them
     * even when it also assumes a role; one without keys that assumes a
     * role continues the chain. */
    bool seen = false;
    for (int i = 0; rc == MF_OK && i < sub.nchain; i++)
        seen = seen || strcmp(sub.chain[i], src_profile) == 0;
    if (seen && strcmp(src_profile, c->profile) == 0 && has_keys(&sub))
        seen = false;
    if (rc == MF_OK && (seen || (!has_keys(&sub) && assumes_role(&sub)))) {
        mf_buf loop = MF_BUF_INIT;
        if (seen || sub.nchain >= MF__S3CFG_MAX_CHAIN) {
            for (int i = 0; i < sub.nchain && rc == MF_OK; i++)
                rc = mf__buf_printf(&loop, "%s -> ", sub.chain[i]);
            if (rc == MF_OK)
                rc = mf__buf_puts(&loop, src_profile);
            if (rc == MF_OK && seen)
                rc = mf__error_set(MF_EINVAL, "AWS profiles assume roles in a loop: %s", loop.ptr);
            else if (rc == MF_OK)
                rc = mf__error_set(MF_EINVAL, "AWS profiles assume more than %d roles in a row: %s",
                                   MF__S3CFG_MAX_CHAIN, loop.ptr);
        } else {
            src->pending = "assume-role";
        }
        mf_buf_dispose(&loop);
    } else if (rc == MF_OK) {
        rc = resolve_credentials(src, &sub);
    }
    if (rc == MF_OK)
        rc = resolve_pending(src, &sub, top);
    mf_buf_dispose(&sub.conf_section);
    return rc;
}

static int resolve_assume_role(mf__s3cfg *out, const ctx *c, const mf__s3cfg *top)
{
    const char *v = prof(c, "duration_seconds");
    int rc;
    if (v) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < 900 || n > 43200)
            return mf__error_set(MF_EINVAL,
                                 "AWS profile '%s': duration_seconds '%s' is not a whole number "
                                 "from 900 to 43200",
                                 c->profile, v);
        out->duration_s = (int32_t)n;
    }
    if ((rc = dup_into(&out->role_arn, prof(c, "role_arn"))) != MF_OK ||
        (rc = dup_into(&out->role_session_name, prof(c, "role_session_name"))) != MF_OK ||
        (rc = session_name_check(out->role_session_name, "role_session_name")) != MF_OK ||
        (rc = dup_into(&out->external_id, prof(c, "external_id"))) != MF_OK ||
        (rc = dup_into(&out->mfa_serial, prof(c, "mfa_serial"))) != MF_OK)
        return rc;
    /* Every role of a chain is asked of the same STS: AWS_PROFILE's. */
    if (out == top)
        rc = configured_endpoint(&out->sts_endpoint_url, c, "AWS_ENDPOINT_URL_STS", "sts");
    else
        rc = dup_into(&out->sts_endpoint_url, top->sts_endpoint_url);
    if (rc != MF_OK)
        return rc;
    return resolve_role_source(out, c, top);
}

/* Capture what out->pending's source reads (config.h). `top` is the
 * configuration being loaded, `out` it or one of its role sources. */
static int resolve_pending(mf__s3cfg *out, const ctx *c, const mf__s3cfg *top)
{
    if (!out->pending)
        return MF_OK;
    if (strcmp(out->pending, "assume-role") == 0)
        return resolve_assume_role(out, c, top);
    if (strcmp(out->pending, "web-identity") == 0)
        return resolve_web_identity(out, c);
    if (strcmp(out->pending, "process") == 0)
        return dup_into(&out->credential_process, prof(c, "credential_process"));
    if (strcmp(out->pending, "sso") == 0)
        return resolve_sso(out, c);
    if (strcmp(out->pending, "container") == 0)
        return resolve_container(out);
    if (strcmp(out->pending, "imds") == 0)
        return resolve_imds(out, c);
    return MF_OK;
}

static int resolve_network(mf__s3cfg *out, const ctx *c)
{
    const char *from;
    int rc = dup_into(&out->ca_bundle, setting(c, "AWS_CA_BUNDLE", "ca_bundle", &from));
    return rc != MF_OK ? rc : resolve_pending(out, c, out);
}

int mf__s3cfg_load(mf__s3cfg *out)
{
    ctx c;
    int rc;

    mf__s3cfg_dispose(out);
    memset(&c, 0, sizeof c);
    c.profile = mf__getenv("AWS_PROFILE");
    bool explicit_profile = c.profile != NULL;
    if (!c.profile)
        c.profile = "default";
    if ((rc = file_path(&c.cred_path, "AWS_SHARED_CREDENTIALS_FILE", "credentials")) != MF_OK ||
        (rc = file_path(&c.conf_path, "AWS_CONFIG_FILE", "config")) != MF_OK)
        goto done;
    if (strcmp(c.profile, "default") == 0)
        rc = mf__buf_puts(&c.conf_section, "default");
    else
        rc = mf__buf_printf(&c.conf_section, "profile %s", c.profile);
    if (rc != MF_OK)
        goto done;
    if ((c.cred_path.ptr && (rc = ini_load(&c.cred, c.cred_path.ptr)) != MF_OK) ||
        (c.conf_path.ptr && (rc = ini_load(&c.conf, c.conf_path.ptr)) != MF_OK))
        goto done;
    if (!c.cred.path)
        c.cred.path = "(no credentials file)";
    if (!c.conf.path)
        c.conf.path = "(no config file)";

    /* botocore fails on a profile named explicitly that no file has. */
    if (explicit_profile && strcmp(c.profile, "default") != 0 && !ini_has(&c.cred, c.profile) &&
        !ini_has(&c.conf, c.conf_section.ptr)) {
        rc = mf__error_set(MF_EINVAL, "AWS_PROFILE '%s' is in neither '%s' nor '%s'", c.profile,
                           c.cred.path, c.conf.path);
        goto done;
    }
    if ((rc = dup_into(&out->profile, c.profile)) != MF_OK ||
        (rc = resolve_credentials(out, &c)) != MF_OK || (rc = resolve_region(out, &c)) != MF_OK ||
        (rc = resolve_endpoint(out, &c)) != MF_OK || (rc = resolve_network(out, &c)) != MF_OK)
        goto done;

done:
    ini_dispose(&c.cred);
    ini_dispose(&c.conf);
    mf_buf_dispose(&c.cred_path);
    mf_buf_dispose(&c.conf_path);
    mf_buf_dispose(&c.conf_section);
    if (rc != MF_OK)
        mf__s3cfg_dispose(out);
    return rc;
}

void mf__s3cfg_dispose(mf__s3cfg *cfg)
{
    if (!cfg)
        return;
    mf__secret_free(cfg->access_key_id);
    mf__secret_free(cfg->secret_access_key);
    mf__secret_free(cfg->session_token);
    free(cfg->source);
    free(cfg->profile);
    free(cfg->region);
    free(cfg->endpoint_url);
    free(cfg->ca_bundle);
    free(cfg->role_arn);
    free(cfg->web_identity_token_file);
    free(cfg->role_session_name);
    free(cfg->sts_endpoint_url);
    free(cfg->credential_process);
    free(cfg->container_url);
    free(cfg->container_token_file);
    mf__secret_free(cfg->container_token);
    free(cfg->imds_endpoint);
    if (cfg->role_source) {
        mf__s3cfg_dispose(cfg->role_source);
        free(cfg->role_source);
    }
    free(cfg->external_id);
    free(cfg->mfa_serial);
    free(cfg->sso_start_url);
    free(cfg->sso_region);
    free(cfg->sso_account_id);
    free(cfg->sso_role_name);
    free(cfg->sso_session);
    free(cfg->sso_cache_file);
    free(cfg->sso_endpoint_url);
    free(cfg->sso_oidc_endpoint_url);
    *cfg = (mf__s3cfg)MF__S3CFG_INIT;
}

/* ---- addressing */

static bool is_ipv4(const char *s, size_t n)
{
    int dots = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (!digits)
                return false;
            dots++;
            digits = 0;
        } else if (isdigit((unsigned char)s[i])) {
            if (++digits > 3)
                return false;
        } else {
            return false;
        }
    }
    return dots == 3 && digits;
}

bool mf__s3cfg_bucket_dns_compatible(const char *b)
{
    size_t n = b ? strlen(b) : 0;
    if (n < 3 || n > 63 || is_ipv4(b, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '-' && ch != '.')
            return false;
        bool edge = i == 0 || i == n - 1 || b[i - 1] == '.' || b[i + 1] == '.';
        if (!alnum && edge)
            return false; /* labels start and end alnum; also rules out ".." */
    }
    return true;
}

/* The endpoint's host: an IP literal or localhost cannot have virtual hosts. */
static bool endpoint_host_literal(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *at = strpbrk(h, "@/");
    if (at && *at == '@')
        h = at + 1;
    if (*h == '[')
        return true; /* IPv6 literal */
    size_t n = strcspn(h, ":/?#");
    return is_ipv4(h, n) || (n == 9 && strncasecmp(h, "localhost", 9) == 0);
}

bool mf__s3cfg_use_path_style(const mf__s3cfg *cfg, const char *bucket)
{
    if (cfg->addressing == MF__S3CFG_ADDRESSING_PATH)
        return true;
    if (cfg->addressing == MF__S3CFG_ADDRESSING_VIRTUAL)
        return false;
    if (!mf__s3cfg_bucket_dns_compatible(bucket))
        return true;
    bool https = !cfg->endpoint_url || strncasecmp(cfg->endpoint_url, "https://", 8) == 0;
    if (https && strchr(bucket, '.'))
        return true;
    return cfg->endpoint_url && endpoint_host_literal(cfg->endpoint_url);
}
