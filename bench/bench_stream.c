/*
 * bench_stream: throughput and peak memory of streamed artifacts
 * (mf_task_put_stream, mf_artifact_read_stream) on the fs datastore, with
 * the buffered calls (mf_task_put, mf_artifact_read) of the same value for
 * comparison. Public API only.
 *
 *   bench_stream [dir] [megabytes]     (defaults: $TMPDIR or /tmp, 1024)
 *
 * Each scenario runs in a fresh process (fork, then exec of this program)
 * so that its peak RSS (VmHWM) is its own. Values are generated while they
 * are streamed (xorshift, or text-like for the compressible case); the
 * "generate only" row is what that costs without the library. Puts are
 * timed as mf_task_put_stream sees them; the commit's sync is shown apart.
 * Reads are warm (the page cache holds what was just written); the write
 * callback reads every byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <metaflow.h>

#define MB 1e6

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long status_kb(const char *field)
{
    FILE *fp = fopen("/proc/self/status", "r");
    if (!fp)
        return -1;
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, fp))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    fclose(fp);
    return v;
}

/* ------------------------------------------------------------ data */

typedef struct gen {
    int text;
    uint64_t x;
    uint64_t left;
    const char *tok; /* the rest of a text token cut by the last call */
    size_t ntok;
} gen;

/* Text-like data (about 3x with zstd -1): words and numbers, as CSV, from
 * a table of tokens so that generating costs little next to storing. */
#define NTOKENS 1024
static char g_tokens[NTOKENS][12];
static size_t g_toklen[NTOKENS];

static void tokens_init(void)
{
    static const char *words[] = { "alpha,", "beta,", "gamma,", "delta,", "epsilon,",
                                   "zeta,", "eta,", "theta,", "iota,", "kappa,",
                                   "lambda,", "mu,", "nu,", "xi,", "omicron,", "pi\n" };
    uint64_t x = 7;
    for (int i = 0; i < NTOKENS; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int k = i % 2 ? snprintf(g_tokens[i], sizeof g_tokens[i], "%u,",
                                 (unsigned)(x >> 40) % 1000)
                      : snprintf(g_tokens[i], sizeof g_tokens[i], "%s", words[x & 15]);
        g_toklen[i] = (size_t)k;
    }
}

/* `seed` differs between scenarios that share the store: the same bytes
 * would only be deduplicated, not stored. */
static void gen_init(gen *g, int text, uint64_t seed, uint64_t size)
{
    memset(g, 0, sizeof *g);
    g->text = text;
    g->x = 0x9E3779B97F4A7C15ull * seed + 1;
    g->left = size;
    if (text && !g_toklen[0])
        tokens_init();
}

static void gen_text(gen *g, uint8_t *p, size_t n)
{
    size_t i = 0;
    uint64_t x = g->x;
    while (i < n) {
        if (g->ntok == 0) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            /* Words and numbers in random order, not a repeating table. */
            size_t t = (size_t)((x >> 20) % NTOKENS);
            g->tok = g_tokens[t];
            g->ntok = g_toklen[t];
        }
        size_t k = g->ntok < n - i ? g->ntok : n - i;
        memcpy(p + i, g->tok, k);
        g->tok += k;
        g->ntok -= k;
        i += k;
    }
    g->x = x;
}

static int64_t gen_read(void *buf, size_t cap, void *payload)
{
    gen *g = payload;
    size_t n = cap < g->left ? cap : (size_t)g->left;
    uint8_t *p = buf;
    if (g->text) {
        gen_text(g, p, n);
    } else {
        uint64_t x = g->x;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            memcpy(p + i, &x, 8);
        }
        for (; i < n; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            p[i] = (uint8_t)x;
        }
        g->x = x;
    }
    g->left -= n;
    return (int64_t)n;
}

/* Reads every byte, as a consumer would. */
typedef struct consumer {
    uint64_t bytes, sum;
} consumer;

static int consume(const void *buf, size_t len, void *payload)
{
    consumer *c = payload;
    const uint8_t *p = buf;
    uint64_t s = c->sum;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        s += v;
    }
    for (; i < len; i++)
        s += p[i];
    c->sum = s;
    c->bytes += len;
    return 0;
}

/* ------------------------------------------------------- scenarios */

typedef struct result {
    int rc;
    double secs, sync_secs;
    long rss0_kb, hwm_kb;
    char err[256];
} result;

static const char *g_root;
static uint64_t g_size;

static int open_task(mf_engine **e, mf_run **r, mf_task **t, const char *flow)
{
    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    o.root = g_root;
    int rc = mf_engine_open(e, &o);
    if (!rc)
        rc = mf_run_create(r, *e, flow, NULL);
    if (!rc)
        rc = mf_task_create(t, *r, "start", NULL);
    return rc;
}

static int open_artifact(mf_engine **e, mf_task **t, mf_artifact **a, const char *flow)
{
    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    o.root = g_root;
    char ps[512];
    mf_run *r = NULL;
    int rc = mf_engine_open(e, &o);
    if (!rc)
        rc = mf_run_open(&r, *e, flow, "latest");
    if (!rc) {
        snprintf(ps, sizeof ps, "%s/%s/start/1", flow, mf_run_id(r));
        rc = mf_task_open(t, *e, ps);
    }
    mf_run_free(r);
    if (!rc)
        rc = mf_task_artifact(a, *t, "v");
    return rc;
}

static void s_generate(result *res, int text)
{
    gen g;
    gen_init(&g, text, 1, g_size);
    uint8_t *buf = malloc(4u << 20);
    double t = now_s();
    while (g.left)
        gen_read(buf, 4u << 20, &g);
    res->secs = now_s() - t;
    free(buf);
}

static void s_put_stream(result *res, int text)
{
    mf_engine *e = NULL;
    mf_run *r = NULL;
    mf_task *tk = NULL;
    const char *flow = text ? "StreamText" : "StreamRandom";
    int rc = open_task(&e, &r, &tk, flow);
    res->rss0_kb = status_kb("VmRSS");
    gen g;
    gen_init(&g, text, 1, g_size);
    double t = now_s();
    if (!rc)
        rc = mf_task_put_stream(tk, "v", "raw", gen_read, &g, 0);
    res->secs = now_s() - t;
    t = now_s();
    if (!rc)
        rc = mf_task_commit(tk, MF_TASK_SUCCEEDED);
    res->sync_secs = now_s() - t;
    if (!rc)
        rc = mf_run_finish(r, MF_RUN_SUCCEEDED);
    res->rc = rc;
    if (rc)
        snprintf(res->err, sizeof res->err, "%s", mf_error_last());
    mf_task_free(tk);
    mf_run_free(r);
    mf_engine_free(e);
}

static void s_read_stream(result *res, int text)
{
    mf_engine *e = NULL;
    mf_task *tk = NULL;
    mf_artifact *a = NULL;
    int rc = open_artifact(&e, &tk, &a, text ? "StreamText" : "StreamRandom");
    res->rss0_kb = status_kb("VmRSS");
    consumer c = { 0, 0 };
    double t = now_s();
    if (!rc)
        rc = mf_artifact_read_stream(a, 0, 0, UINT64_MAX, consume, &c);
    res->secs = now_s() - t;
    if (!rc && c.bytes != g_size)
        rc = MF_ERROR;
    res->rc = rc;
    if (rc)
        snprintf(res->err, sizeof res->err, "%s", mf_error_last());
    mf_artifact_free(a);
    mf_task_free(tk);
    mf_engine_free(e);
}

/* The buffered calls on the same value: the whole value in memory. */
static void s_put_buffered(result *res, int text)
{
    mf_engine *e = NULL;
    mf_run *r = NULL;
    mf_task *tk = NULL;
    const char *flow = text ? "BufText" : "BufRandom";
    int rc = open_task(&e, &r, &tk, flow);
    res->rss0_kb = status_kb("VmRSS");
    uint8_t *d = malloc(g_size);
    gen g;
    gen_init(&g, text, 2, g_size);
    if (!d) {
        rc = MF_ENOMEM;
    } else {
        for (uint64_t off = 0; off < g_size;)
            off += (uint64_t)gen_read(d + off, (size_t)(g_size - off), &g);
    }
    double t = now_s();
    if (!rc)
        rc = mf_task_put(tk, "v", "raw", d, g_size, 0);
    res->secs = now_s() - t;
    t = now_s();
    if (!rc)
        rc = mf_task_commit(tk, MF_TASK_SUCCEEDED);
    res->sync_secs = now_s() - t;
    if (!rc)
        rc = mf_run_finish(r, MF_RUN_SUCCEEDED);
    res->rc = rc;
    if (rc)
        snprintf(res->err, sizeof res->err, "%s", mf_error_last());
    free(d);
    mf_task_free(tk);
    mf_run_free(r);
    mf_engine_free(e);
}

static void s_read_buffered(result *res, int text)
{
    mf_engine *e = NULL;
    mf_task *tk = NULL;
    mf_artifact *a = NULL;
    int rc = open_artifact(&e, &tk, &a, text ? "BufText" : "BufRandom");
    res->rss0_kb = status_kb("VmRSS");
    mf_buf b = MF_BUF_INIT;
    consumer c = { 0, 0 };
    double t = now_s();
    if (!rc)
        rc = mf_artifact_read(a, 0, &b);
    if (!rc)
        consume(b.ptr, b.size, &c);
    res->secs = now_s() - t;
    res->rc = rc;
    if (rc)
        snprintf(res->err, sizeof res->err, "%s", mf_error_last());
    mf_buf_dispose(&b);
    mf_artifact_free(a);
    mf_task_free(tk);
    mf_engine_free(e);
}

typedef void (*scenario_fn)(result *res, int text);

static const struct scenario {
    const char *name;
    scenario_fn fn;
    int text;
} scenarios[] = {
    { "generate only, random", s_generate, 0 },
    { "put_stream, random", s_put_stream, 0 },
    { "read_stream, random", s_read_stream, 0 },
    { "generate only, text", s_generate, 1 },
    { "put_stream, text (zstd)", s_put_stream, 1 },
    { "read_stream, text (zstd)", s_read_stream, 1 },
    { "mf_task_put, random", s_put_buffered, 0 },
    { "mf_artifact_read, random", s_read_buffered, 0 },
    { "mf_task_put, text (zstd)", s_put_buffered, 1 },
    { "mf_artifact_read, text", s_read_buffered, 1 },
};

/* The child: run scenario i, write the result to stdout (a pipe). */
static int child(int i)
{
    result res;
    memset(&res, 0, sizeof res);
    res.rss0_kb = status_kb("VmRSS");
    scenarios[i].fn(&res, scenarios[i].text);
    res.hwm_kb = status_kb("VmHWM");
    return fwrite(&res, sizeof res, 1, stdout) == 1 ? 0 : 3;
}

static result run(const char *self, int i)
{
    /* Start each scenario without the previous one's dirty pages. */
    sync();
    result res;
    memset(&res, 0, sizeof res);
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char size[32], idx[16];
        snprintf(size, sizeof size, "%llu", (unsigned long long)g_size);
        snprintf(idx, sizeof idx, "%d", i);
        execl(self, self, "--child", g_root, size, idx, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got < sizeof res && (n = read(fds[0], (char *)&res + got, sizeof res - got)) > 0)
        got += (size_t)n;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != sizeof res || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        res.rc = MF_ERROR;
        snprintf(res.err, sizeof res.err, "child failed (status 0x%x)", status);
    }
    return res;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0) {
        g_root = argv[2];
        g_size = strtoull(argv[3], NULL, 10);
        return child(atoi(argv[4]));
    }
    const char *base = argc > 1 ? argv[1] : getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    unsigned long mb = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024;
    g_size = (uint64_t)mb << 20;
    char root[4096];
    snprintf(root, sizeof root, "%s/bench_stream-XXXXXX", base);
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    g_root = root;
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) {
        perror("readlink /proc/self/exe");
        return 2;
    }
    self[sl] = 0;

    printf("bench_stream: %lu MiB values on fs at %s (%s)\n", mb, root, mf_version_string());
    printf("MB = 10^6 bytes; peak RSS is VmHWM of a fresh process, RSS at start in ()\n\n");
    printf("%-28s %10s %9s %11s %14s\n", "scenario", "MB/s", "secs", "sync secs",
           "peak RSS MB");
    int failed = 0;
    for (int i = 0; i < (int)(sizeof scenarios / sizeof scenarios[0]); i++) {
        result r = run(self, i);
        if (r.rc) {
            printf("%-28s FAILED: %s\n", scenarios[i].name, r.err);
            failed = 1;
            continue;
        }
        char sync[16] = "";
        if (r.sync_secs > 0)
            snprintf(sync, sizeof sync, "%.3f", r.sync_secs);
        printf("%-28s %10.0f %9.3f %11s %7.1f (%4.1f)\n", scenarios[i].name,
               (double)g_size / MB / r.secs, r.secs, sync, r.hwm_kb * 1024.0 / MB,
               r.rss0_kb * 1024.0 / MB);
        fflush(stdout);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return failed;
}
