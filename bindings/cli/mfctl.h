/*
 * mfctl - the command-line tool over libmetaflow's public API.
 *
 * What the command files share: the parsed command line, the engine, error
 * reporting that follows the exit-status contract (0 ok, 1 failure, 2
 * usage), pathspec parsing and output helpers. Nothing here reaches
 * library internals: mfctl is also a test that the public API suffices.
 */
#ifndef MFCTL_H
#define MFCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <metaflow.h>

#define MFCTL_EXIT_OK 0
#define MFCTL_EXIT_FAIL 1
#define MFCTL_EXIT_USAGE 2

/* Options a command accepts, as bits of mfctl_command.opts. */
#define MFCTL_OPT_TAG        0x001u
#define MFCTL_OPT_SUCCESSFUL 0x002u
#define MFCTL_OPT_LIMIT      0x004u
#define MFCTL_OPT_ALL        0x008u
#define MFCTL_OPT_STREAM     0x010u /* --stdout, --stderr, --both */
#define MFCTL_OPT_TIMESTAMPS 0x020u
#define MFCTL_OPT_PART       0x040u
#define MFCTL_OPT_OUTPUT     0x080u
#define MFCTL_OPT_DRY_RUN    0x100u
#define MFCTL_OPT_GRACE      0x200u

/* How a command opens the datastore. */
typedef enum mfctl_open_mode {
    MFCTL_OPEN_NONE = 0,
    MFCTL_OPEN_READ,    /* read-only, never creates anything */
    MFCTL_OPEN_WRITE,   /* an existing datastore with an index */
    MFCTL_OPEN_REBUILD  /* an existing datastore; the index may be missing */
} mfctl_open_mode;

/* A pathspec "Flow/run[/step[/task[/attempt]]]" split into its parts. */
#define MFCTL_PATH_MAX_PARTS 5
typedef struct mfctl_path {
    char *buf;                              /* owned copy, split in place */
    const char *part[MFCTL_PATH_MAX_PARTS]; /* flow, run, step, task, attempt */
    size_t n;
} mfctl_path;

typedef struct mfctl mfctl;

typedef struct mfctl_command {
    const char *name;
    const char *args;     /* synopsis after the name */
    const char *summary;  /* one line */
    const char *help;     /* option lines and output format, or NULL */
    int (*run)(mfctl *ctl);
    uint32_t opts;        /* MFCTL_OPT_* */
    size_t min_args, max_args;
    /* Parts of the pathspec the first argument must have (0: no pathspec);
     * checked before the datastore is opened. */
    size_t path_min, path_max;
    mfctl_open_mode open;
} mfctl_command;

/* The parsed command line and the open engine. */
struct mfctl {
    const char *root;          /* --root, or NULL */
    const char *index;         /* --index, or NULL */
    const mfctl_command *cmd;
    const char **args;         /* positional arguments after the command */
    size_t nargs;
    mfctl_path path;           /* args[0] split, for commands taking a pathspec */
    const char **tags;         /* --tag, repeatable */
    size_t ntags;
    int successful;            /* --successful */
    uint64_t limit;            /* --limit; 0: no limit */
    int all;                   /* --all */
    uint32_t streams;          /* bit 1: stdout, bit 2: stderr */
    int timestamps;            /* --timestamps */
    uint32_t part;             /* --part */
    const char *output;        /* -o/--output, or NULL for stdout */
    int dry_run;               /* --dry-run */
    int64_t grace;             /* --grace; -1: the library's default */
    mf_engine *engine;
};

/* The command table (mfctl.c). */
extern const mfctl_command mfctl_commands[];

/* Commands. */
int mfctl_cmd_flows(mfctl *ctl);
int mfctl_cmd_runs(mfctl *ctl);
int mfctl_cmd_steps(mfctl *ctl);
int mfctl_cmd_tasks(mfctl *ctl);
int mfctl_cmd_artifacts(mfctl *ctl);
int mfctl_cmd_show(mfctl *ctl);
int mfctl_cmd_logs(mfctl *ctl);
int mfctl_cmd_dump(mfctl *ctl);
int mfctl_cmd_verify(mfctl *ctl);
int mfctl_cmd_gc(mfctl *ctl);
int mfctl_cmd_reindex(mfctl *ctl);

#if defined(__GNUC__)
#  define MFCTL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define MFCTL_PRINTF(a, b)
#endif

/* "mfctl: <message>" on stderr; returns MFCTL_EXIT_FAIL. */
int mfctl_fail(const char *fmt, ...) MFCTL_PRINTF(1, 2);

/* "mfctl: [<context>: ]<mf_error_last()>" on stderr; returns
 * MFCTL_EXIT_FAIL. The library's messages name the object at fault, so the
 * context only says what mfctl was doing. */
int mfctl_fail_api(const char *context);

/* A usage error of the current command: the message, then its synopsis,
 * on stderr; returns MFCTL_EXIT_USAGE. */
int mfctl_usage_error(const mfctl *ctl, const char *fmt, ...) MFCTL_PRINTF(2, 3);

/* Split `spec` into min..max non-empty parts. A wrong shape is a usage
 * error (reported; returns MFCTL_EXIT_USAGE). Free with mfctl_path_free(). */
int mfctl_path_parse(const mfctl *ctl, mfctl_path *path, const char *spec,
                     size_t min, size_t max);
void mfctl_path_free(mfctl_path *path);

/* Open the run of ctl->path; its run part may be "latest" or
 * "latest_successful". Reports failures; returns an exit status. */
int mfctl_open_run(mfctl *ctl, mf_run **out);

/* Open the task of ctl->path ("Flow/run/step/task[/attempt]"). Reports
 * failures; returns an exit status. */
int mfctl_open_task(mfctl *ctl, mf_task **out);

/* Output. */
const char *mfctl_run_status_name(int status);
const char *mfctl_task_status_name(int status);
/* ISO 8601 UTC ("2024-05-01T12:00:00Z") of microseconds since the epoch;
 * "-" for 0. */
void mfctl_format_time(int64_t us, char *out, size_t size);
/* Write a field of free text, escaping control characters and '\' (C
 * style) so that tabs and newlines can only ever separate fields and
 * records. */
void mfctl_put_field(FILE *f, const char *s);
/* Write all of `len` bytes to a descriptor; 0, or -1 with errno set. */
int mfctl_write_all(int fd, const void *data, size_t len);

#endif /* MFCTL_H */
