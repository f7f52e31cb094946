/* Test utilities shared by every suite. */
#ifndef MF_TESTUTIL_H
#define MF_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh empty directory under $TMPDIR (or /tmp), malloc'ed path. */
char *mf_test_tmpdir(const char *tag);
/* rm -rf; ignores errors. */
void mf_test_rmrf(const char *path);
/* Deterministic pseudo-random bytes (xorshift) for reproducible data. */
void mf_test_fill_random(void *buf, size_t len, uint64_t seed);
/* Read a whole file (malloc'ed, NUL-terminated, *len set); NULL on error. */
void *mf_test_read_file(const char *path, size_t *len);
/* Write a whole file; 0 on success. */
int mf_test_write_file(const char *path, const void *data, size_t len);

/* Entries whose name starts with '.' anywhere under `dir` (temp files). */
int mf_test_count_dotfiles(const char *dir);

#endif
