/*
 * mfctl - inspect and maintain a libmetaflow datastore from the shell.
 *
 *   mfctl [--root DIR] [--index DIR] COMMAND [ARGS...]
 *
 * This file: the command table, the command line, help, and opening the
 * datastore. docs/mfctl.md is the reference.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mfctl.h"

#define LOCAL_DIR ".metaflow"

const mfctl_command mfctl_commands[] = {
    { "flows", "", "list the flows of the datastore, one per line", NULL,
      mfctl_cmd_flows, 0, 0, 0, 0, 0, MFCTL_OPEN_READ },
    { "runs", "FLOW [--tag TAG]... [--successful] [--limit N]",
      "list the runs of a flow, newest first",
      "  --tag TAG       only runs carrying TAG (repeat: every TAG)\n"
      "  --successful    only runs that succeeded\n"
      "  --limit N       at most N runs\n"
      "\n"
      "Output: one run per line, tab-separated: run id, status (running,\n"
      "succeeded, failed, crashed), created (ISO 8601 UTC), user, then one\n"
      "field per tag (system tags first).\n",
      mfctl_cmd_runs, MFCTL_OPT_TAG | MFCTL_OPT_SUCCESSFUL | MFCTL_OPT_LIMIT, 1, 1, 0, 0,
      MFCTL_OPEN_READ },
    { "steps", "FLOW/RUN", "list the steps that ran, in order of their first task",
      NULL, mfctl_cmd_steps, 0, 1, 1, 2, 2, MFCTL_OPEN_READ },
    { "tasks", "FLOW/RUN[/STEP]", "list the tasks of a run or of one step",
      "Output: one task per line, steps in 'steps' order, tasks by id,\n"
      "tab-separated: pathspec FLOW/RUN/STEP/TASK, status (running, succeeded,\n"
      "failed) and number of its latest attempt.\n",
      mfctl_cmd_tasks, 0, 1, 1, 2, 3, MFCTL_OPEN_READ },
    { "artifacts", "FLOW/RUN/STEP/TASK[/ATTEMPT] [--all]", "list the artifacts of a task",
      "  --all           include private names (starting with '_')\n"
      "\n"
      "Output: one artifact per line, sorted, tab-separated: name, encoding,\n"
      "size of the value in bytes (part 0), number of parts.\n",
      mfctl_cmd_artifacts, MFCTL_OPT_ALL, 1, 1, 4, 5, MFCTL_OPEN_READ },
    { "show", "FLOW/RUN/STEP/TASK[/ATTEMPT]", "show the details of a task",
      "Output: 'key: value' lines: pathspec, step, task, attempt, status; one\n"
      "'foreach: INDEX/NSPLITS VALUE' line per foreach level, outermost first;\n"
      "one 'input: RUN/STEP/TASK' line per parent task; 'origin:' for a task\n"
      "cloned by a resume; 'failure:' followed by the failure text indented by\n"
      "two spaces for a task that failed or was caught.\n",
      mfctl_cmd_show, 0, 1, 1, 4, 5, MFCTL_OPEN_READ },
    { "logs", "FLOW/RUN/STEP/TASK[/ATTEMPT] [--stdout|--stderr|--both] [--timestamps]",
      "print the persisted output of a task attempt",
      "  --stdout        standard output (the default)\n"
      "  --stderr        standard error\n"
      "  --both          both streams, merged in time order\n"
      "  --timestamps    start each line with its ISO 8601 UTC time\n",
      mfctl_cmd_logs, MFCTL_OPT_STREAM | MFCTL_OPT_TIMESTAMPS, 1, 1, 4, 5,
      MFCTL_OPEN_READ },
    { "dump", "FLOW/RUN/STEP/TASK[/ATTEMPT] NAME [--part N] [-o FILE]",
      "write the raw bytes of an artifact",
      "  --part N        part N (0: the value, 1..: out-of-band buffers)\n"
      "  -o, --output FILE\n"
      "                  write to FILE (replaced atomically) instead of stdout\n",
      mfctl_cmd_dump, MFCTL_OPT_PART | MFCTL_OPT_OUTPUT, 2, 2, 4, 5, MFCTL_OPEN_READ },
    { "verify", "", "check every blob of the store; print the keys of damaged ones",
      "Exit status 1 when a blob is damaged; its key is printed on stdout.\n",
      mfctl_cmd_verify, 0, 0, 0, 0, 0, MFCTL_OPEN_READ },
    { "gc", "[--dry-run] [--grace SECONDS]", "delete blobs no task refers to",
      "  --dry-run       count what would be deleted; delete nothing\n"
      "  --grace SECONDS keep unreferenced blobs younger than this (default 3600)\n"
      "\n"
      "Output: 'NAME<TAB>VALUE' lines: manifests, blobs, live, young, swept,\n"
      "bytes_swept (with --dry-run: what would be swept).\n",
      mfctl_cmd_gc, MFCTL_OPT_DRY_RUN | MFCTL_OPT_GRACE, 0, 0, 0, 0, MFCTL_OPEN_WRITE },
    { "reindex", "", "rebuild the metadata index from the datastore", NULL,
      mfctl_cmd_reindex, 0, 0, 0, 0, 0, MFCTL_OPEN_REBUILD },
    { NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, MFCTL_OPEN_NONE }
};

static const mfctl_command *find_command(const char *name)
{
    for (const mfctl_command *c = mfctl_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* ---------------------------------------------------------------- help */

static void print_global_usage(FILE *f)
{
    fputs("usage: mfctl [--root DIR] [--index DIR] COMMAND [ARGS...]\n"
          "       mfctl COMMAND --help | --help | --version\n", f);
}

static void print_help(FILE *f)
{
    print_global_usage(f);
    fputs("\nInspect and maintain a libmetaflow datastore.\n\nCommands:\n", f);
    for (const mfctl_command *c = mfctl_commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fputs("\nGlobal options (before or after the command):\n"
          "  --root DIR      datastore root (default: $METAFLOW_DATASTORE_SYSROOT_LOCAL/.metaflow,\n"
          "                  else the nearest .metaflow directory here or above)\n"
          "  --index DIR     metadata index directory (default: ROOT/.index)\n"
          "  -h, --help      show help; 'mfctl COMMAND --help' for a command\n"
          "  --version       show the versions of mfctl and libmetaflow\n"
          "\nA RUN may also be 'latest' or 'latest_successful'.\n"
          "Exit status: 0 success, 1 failure, 2 usage error.\n", f);
}

static void print_command_usage(FILE *f, const mfctl_command *c)
{
    fprintf(f, "usage: mfctl %s%s%s\n", c->name, *c->args ? " " : "", c->args);
}

static void print_command_help(FILE *f, const mfctl_command *c)
{
    print_command_usage(f, c);
    fprintf(f, "\n%c%s.\n", toupper((unsigned char)c->summary[0]), c->summary + 1);
    if (c->help)
        fprintf(f, "\n%s", c->help);
}

/* ------------------------------------------------------- command line */

/* Every option mfctl knows; `bit` 0 for the global ones. */
enum opt_id {
    O_ROOT, O_INDEX, O_HELP, O_VERSION, O_TAG, O_SUCCESSFUL, O_LIMIT, O_ALL,
    O_STDOUT, O_STDERR, O_BOTH, O_TIMESTAMPS, O_PART, O_OUTPUT, O_DRY_RUN, O_GRACE
};

static const struct opt_def {
    const char *name;  /* long name without "--" */
    char short_name;   /* 0: none */
    int has_arg;
    enum opt_id id;
    uint32_t bit;      /* MFCTL_OPT_*; 0 for global options */
} opt_defs[] = {
    { "root", 0, 1, O_ROOT, 0 },
    { "index", 0, 1, O_INDEX, 0 },
    { "help", 'h', 0, O_HELP, 0 },
    { "version", 0, 0, O_VERSION, 0 },
    { "tag", 0, 1, O_TAG, MFCTL_OPT_TAG },
    { "successful", 0, 0, O_SUCCESSFUL, MFCTL_OPT_SUCCESSFUL },
    { "limit", 0, 1, O_LIMIT, MFCTL_OPT_LIMIT },
    { "all", 0, 0, O_ALL, MFCTL_OPT_ALL },
    { "stdout", 0, 0, O_STDOUT, MFCTL_OPT_STREAM },
    { "stderr", 0, 0, O_STDERR, MFCTL_OPT_STREAM },
    { "both", 0, 0, O_BOTH, MFCTL_OPT_STREAM },
    { "timestamps", 0, 0, O_TIMESTAMPS, MFCTL_OPT_TIMESTAMPS },
    { "part", 0, 1, O_PART, MFCTL_OPT_PART },
    { "output", 'o', 1, O_OUTPUT, MFCTL_OPT_OUTPUT },
    { "dry-run", 0, 0, O_DRY_RUN, MFCTL_OPT_DRY_RUN },
    { "grace", 0, 1, O_GRACE, MFCTL_OPT_GRACE },
};

/* A strict decimal number in [0, max]. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Usage errors before a command is known go with the global synopsis. */
static int usage_error(const mfctl *ctl, const char *msg, const char *what)
{
    if (ctl->cmd)
        return mfctl_usage_error(ctl, "%s '%s'", msg, what);
    fprintf(stderr, "mfctl: %s '%s'\n", msg, what);
    print_global_usage(stderr);
    return MFCTL_EXIT_USAGE;
}

/* Name the first missing argument after the synopsis: its words in
 * capitals that are not inside brackets. */
static int missing_argument(const mfctl *ctl)
{
    const char *p = ctl->cmd->args;
    size_t seen = 0;
    int depth = 0;
    while (*p) {
        size_t n = strcspn(p, " ");
        if (depth == 0 && *p >= 'A' && *p <= 'Z' && seen++ == ctl->nargs)
            return mfctl_usage_error(ctl, "missing %.*s", (int)n, p);
        for (size_t i = 0; i < n; i++)
            depth += p[i] == '[' ? 1 : p[i] == ']' ? -1 : 0;
        p += n + (p[n] == ' ');
    }
    return mfctl_usage_error(ctl, "missing argument");
}

enum { PARSE_GO = -1, PARSE_HELP = -2, PARSE_VERSION = -3 };

static int apply_option(mfctl *ctl, const struct opt_def *d, const char *shown,
                        const char *val)
{
    uint64_t n;
    if (d->bit && !(ctl->cmd && (ctl->cmd->opts & d->bit)))
        return usage_error(ctl, "unknown option", shown);
    switch (d->id) {
    case O_ROOT: ctl->root = val; break;
    case O_INDEX: ctl->index = val; break;
    case O_HELP: return PARSE_HELP;
    case O_VERSION: return PARSE_VERSION;
    case O_TAG: ctl->tags[ctl->ntags++] = val; break;
    case O_SUCCESSFUL: ctl->successful = 1; break;
    case O_LIMIT:
        if (parse_u64(val, UINT32_MAX, &n) || n == 0)
            return mfctl_usage_error(ctl, "--limit '%s' is not a positive number", val);
        ctl->limit = n;
        break;
    case O_ALL: ctl->all = 1; break;
    case O_STDOUT: ctl->streams = 1; break;
    case O_STDERR: ctl->streams = 2; break;
    case O_BOTH: ctl->streams = 3; break;
    case O_TIMESTAMPS: ctl->timestamps = 1; break;
    case O_PART:
        if (parse_u64(val, UINT32_MAX, &n))
            return mfctl_usage_error(ctl, "--part '%s' is not a part number", val);
        ctl->part = (uint32_t)n;
        break;
    case O_OUTPUT: ctl->output = val; break;
    case O_DRY_RUN: ctl->dry_run = 1; break;
    case O_GRACE:
        if (parse_u64(val, INT64_MAX / 1000000, &n))
            return mfctl_usage_error(ctl, "--grace '%s' is not a number of seconds", val);
        ctl->grace = (int64_t)n;
        break;
    }
    return PARSE_GO;
}

/* One option at argv[*i]; may consume the next argument as its value. */
static int parse_option(mfctl *ctl, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    const struct opt_def *d = NULL;
    const char *val = NULL;
    size_t ndefs = sizeof opt_defs / sizeof opt_defs[0];
    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        for (size_t k = 0; k < ndefs && !d; k++)
            if (strlen(opt_defs[k].name) == len && strncmp(opt_defs[k].name, name, len) == 0)
                d = &opt_defs[k];
        if (!d)
            return usage_error(ctl, "unknown option", arg);
        if (eq && !d->has_arg)
            return usage_error(ctl, "option takes no value", arg);
        val = eq ? eq + 1 : NULL;
    } else {
        for (size_t k = 0; k < ndefs && !d; k++)
            if (opt_defs[k].short_name && opt_defs[k].short_name == arg[1])
                d = &opt_defs[k];
        if (!d || (arg[2] && !d->has_arg))
            return usage_error(ctl, "unknown option", arg);
        val = arg[2] ? arg + 2 : NULL;
    }
    if (d->has_arg && !val) {
        if (*i + 1 >= argc)
            return usage_error(ctl, "missing value of option", arg);
        val = argv[++*i];
    }
    return apply_option(ctl, d, arg, val);
}

/* Global options, the command, then its options and arguments in any
 * order; "--" ends the options. */
static int parse_args(mfctl *ctl, int argc, char **argv)
{
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_args && strcmp(arg, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (!only_args && arg[0] == '-' && arg[1]) {
            int rc = parse_option(ctl, argc, argv, &i);
            if (rc != PARSE_GO)
                return rc;
            continue;
        }
        if (!ctl->cmd) {
            if (strcmp(arg, "help") == 0) {
                /* "mfctl help [COMMAND]" */
                if (i + 1 < argc && !(ctl->cmd = find_command(argv[i + 1])))
                    return usage_error(ctl, "unknown command", argv[i + 1]);
                return PARSE_HELP;
            }
            if (!(ctl->cmd = find_command(arg)))
                return usage_error(ctl, "unknown command", arg);
            continue;
        }
        if (ctl->nargs == ctl->cmd->max_args)
            return mfctl_usage_error(ctl, "unexpected argument '%s'", arg);
        ctl->args[ctl->nargs++] = arg;
    }
    if (!ctl->cmd) {
        fputs("mfctl: no command given\n", stderr);
        print_global_usage(stderr);
        return MFCTL_EXIT_USAGE;
    }
    if (ctl->nargs < ctl->cmd->min_args)
        return missing_argument(ctl);
    /* The shape of a pathspec is a usage matter: settle it before
     * looking for a datastore. */
    if (ctl->cmd->path_min) {
        int rc = mfctl_path_parse(ctl, &ctl->path, ctl->args[0], ctl->cmd->path_min,
                                  ctl->cmd->path_max);
        if (rc != MFCTL_EXIT_OK)
            return rc;
    }
    return PARSE_GO;
}

/* ------------------------------------------------------------- engine */

/* The root for a writing open, found the way mf_engine_open() documents
 * it but never made: mf_engine_open() without MF_ENGINE_READONLY creates
 * ./.metaflow when it finds none, and a read-only open cannot serve
 * reindex, whose index may be gone. */
static int resolve_root(const mfctl *ctl, char *out, size_t size)
{
    const char *env = getenv("METAFLOW_DATASTORE_SYSROOT_LOCAL");
    struct stat st;
    char envroot[PATH_MAX];
    if (!ctl->root && env && *env &&
        (size_t)snprintf(envroot, sizeof envroot, "%s/%s", env, LOCAL_DIR) >= sizeof envroot)
        return mfctl_fail("datastore root '%s/%s' is too long", env, LOCAL_DIR);
    if (ctl->root || (env && *env)) {
        const char *root = ctl->root ? ctl->root : envroot;
        if (stat(root, &st) != 0)
            return mfctl_fail("no datastore found: datastore root '%s': %s", root,
                              strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return mfctl_fail("no datastore found: datastore root '%s' is not a directory",
                              root);
        if ((size_t)snprintf(out, size, "%s", root) >= size)
            return mfctl_fail("datastore root '%s' is too long", root);
        return MFCTL_EXIT_OK;
    }
    char cwd[PATH_MAX], dir[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return mfctl_fail("cannot read the working directory: %s", strerror(errno));
    memcpy(dir, cwd, sizeof dir);
    for (;;) {
        int n = snprintf(out, size, "%s/%s", strcmp(dir, "/") ? dir : "", LOCAL_DIR);
        if (n > 0 && (size_t)n < size && stat(out, &st) == 0 && S_ISDIR(st.st_mode))
            return MFCTL_EXIT_OK;
        if (strcmp(dir, "/") == 0)
            break;
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    return mfctl_fail("no datastore found: no '%s' directory in '%s' or its parents",
                      LOCAL_DIR, cwd);
}

static int open_engine(mfctl *ctl)
{
    mf_engine_options o = MF_ENGINE_OPTIONS_INIT;
    char root[PATH_MAX + sizeof LOCAL_DIR + 1];
    char index[sizeof root + 8];
    struct stat st;
    int rc;
    o.root = ctl->root;
    o.index_dir = ctl->index;
    /* A remote datastore (METAFLOW_DEFAULT_DATASTORE=s3) has its root in
     * the environment and its index in a local cache the library keeps. */
    const char *ds = getenv("MF_DATASTORE");
    if (!ds || !*ds)
        ds = getenv("METAFLOW_DEFAULT_DATASTORE");
    bool remote = ds && *ds && strcmp(ds, "fs") != 0 && strcmp(ds, "local") != 0;
    if (ctl->cmd->open == MFCTL_OPEN_READ) {
        o.flags = MF_ENGINE_READONLY;
    } else if (!remote) {
        if ((rc = resolve_root(ctl, root, sizeof root)) != MFCTL_EXIT_OK)
            return rc;
        o.root = root;
        /* A writing open would create a missing index, and readers would
         * then see an empty datastore: only reindex may build one. */
        if (ctl->cmd->open == MFCTL_OPEN_WRITE) {
            if (!ctl->index)
                snprintf(index, sizeof index, "%s/.index", root);
            if (stat(ctl->index ? ctl->index : index, &st) != 0)
                return mfctl_fail("no datastore found: metadata index '%s': %s "
                                  "('mfctl reindex' rebuilds it)",
                                  ctl->index ? ctl->index : index, strerror(errno));
        }
    }
    rc = mf_engine_open(&ctl->engine, &o);
    if (rc == MF_ENOTFOUND)
        return mfctl_fail_api("no datastore found");
    if (rc != MF_OK)
        return mfctl_fail_api("cannot open the datastore");
    return MFCTL_EXIT_OK;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    mfctl ctl;
    int rc;
    memset(&ctl, 0, sizeof ctl);
    ctl.grace = -1;
    ctl.streams = 1;
    /* Nothing takes more positional arguments or tags than argv holds. */
    ctl.args = calloc((size_t)argc + 1, sizeof *ctl.args);
    ctl.tags = calloc((size_t)argc + 1, sizeof *ctl.tags);
    if (!ctl.args || !ctl.tags) {
        free(ctl.args);
        free(ctl.tags);
        return mfctl_fail("out of memory");
    }
    rc = parse_args(&ctl, argc, argv);
    if (rc == PARSE_HELP) {
        if (ctl.cmd)
            print_command_help(stdout, ctl.cmd);
        else
            print_help(stdout);
        rc = MFCTL_EXIT_OK;
    } else if (rc == PARSE_VERSION) {
        printf("mfctl %s (libmetaflow %s)\n", MF_VERSION_STRING, mf_version_string());
        rc = MFCTL_EXIT_OK;
    } else if (rc == PARSE_GO) {
        rc = open_engine(&ctl);
        if (rc == MFCTL_EXIT_OK)
            rc = ctl.cmd->run(&ctl);
        mf_engine_free(ctl.engine);
    }
    mfctl_path_free(&ctl.path);
    free(ctl.args);
    free(ctl.tags);
    /* Output that never reached its destination is a failure. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (rc == MFCTL_EXIT_OK)
            rc = mfctl_fail("cannot write to standard output: %s", strerror(errno));
    }
    return rc;
}

/* ------------------------------------------------------ shared helpers */

int mfctl_usage_error(const mfctl *ctl, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mfctl %s: ", ctl->cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    print_command_usage(stderr, ctl->cmd);
    return MFCTL_EXIT_USAGE;
}
