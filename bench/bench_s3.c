/*
 * bench_s3: stream one file up into an artifact on the S3 datastore and
 * back down into another file, through the public API, and print the
 * figures as one JSON line. Driven by bench/bench_s3.py, which starts the
 * endpoint and runs boto3's transfer manager on the same file for
 * comparison.
 *
 *   bench_s3 IN OUT    (datastore from $METAFLOW_DEFAULT_DATASTORE and
 *                       $METAFLOW_DATASTORE_SYSROOT_S3, like any host)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <metaflow.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t read_fd(void *buf, size_t cap, void *payload)
{
    int fd = *(int *)payload;
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

static int write_fd(const void *buf, size_t len, void *payload)
{
    int fd = *(int *)payload;
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

#define TRY(call)                                                                  \
    do {                                                                           \
        if ((rc = (call)) != MF_OK) {                                              \
            fprintf(stderr, "bench_s3: %s: %s\n", #call, mf_error_last());         \
            goto out;                                                              \
        }                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_s3 IN OUT\n");
        return 2;
    }
    mf_engine *e = NULL;
    mf_run *run = NULL;
    mf_task *t = NULL;
    mf_artifact *a = NULL;
    int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = MF_OK;
    if (in < 0 || out < 0) {
        perror("bench_s3: open");
        return 1;
    }
    off_t size = lseek(in, 0, SEEK_END);
    lseek(in, 0, SEEK_SET);
    mf_run_options ro = MF_RUN_OPTIONS_INIT;
    TRY(mf_engine_open(&e, NULL));
    TRY(mf_run_create(&run, e, "BenchS3Flow", &ro));
    TRY(mf_task_create(&t, run, "start", NULL));
    double t0 = now();
    TRY(mf_task_put_stream(t, "data", "raw", read_fd, &in, MF_PUT_RAW));
    TRY(mf_task_commit(t, MF_TASK_SUCCEEDED));
    double t1 = now();
    TRY(mf_task_artifact(&a, t, "data"));
    TRY(mf_artifact_read_stream(a, 0, 0, UINT64_MAX, write_fd, &out));
    if (fsync(out) != 0) {
        perror("bench_s3: fsync");
        rc = MF_EIO;
        goto out;
    }
    double t2 = now();
    TRY(mf_run_finish(run, MF_RUN_SUCCEEDED));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"bytes\": %" PRId64 ", \"up_s\": %.3f, \"down_s\": %.3f, \"peak_rss_kb\": %ld}\n",
           (int64_t)size, t1 - t0, t2 - t1, ru.ru_maxrss);
out:
    mf_artifact_free(a);
    mf_task_free(t);
    mf_run_free(run);
    mf_engine_free(e);
    close(in);
    close(out);
    return rc == MF_OK ? 0 : 1;
}
