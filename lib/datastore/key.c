/* Datastore key and prefix rules (metaflow/sys/datastore.h). */
#include <stdbool.h>
#include <string.h>

#include "datastore.h"

static bool key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '=' ||
           c == '+' || c == '-';
}

/* Messages quote at most this much of a key: an over-long key is already
 * the error, and a 1 MB message helps no one. */
#define SHOWN 80

/* `partial_last`: the last component may be empty or partial (prefixes). */
static int check(const char *what, const char *key, bool partial_last)
{
    if (!key)
        return mf__error_set(MF_EINVAL, "datastore %s is NULL", what);
    size_t len = strlen(key);
    int shown = len > SHOWN ? SHOWN : (int)len;
    const char *more = len > SHOWN ? "..." : "";
    if (len == 0 && !partial_last)
        return mf__error_set(MF_EINVAL, "datastore %s '': empty", what);
    if (len > MF__DS_KEY_MAX)
        return mf__error_set(MF_EINVAL, "datastore %s '%.*s%s': %zu bytes, more than %u",
                             what, shown, key, more, len, MF__DS_KEY_MAX);
    if (key[0] == '/')
        return mf__error_set(MF_EINVAL, "datastore %s '%.*s%s': starts with '/'",
                             what, shown, key, more);
    if (!partial_last && key[len - 1] == '/')
        return mf__error_set(MF_EINVAL, "datastore %s '%.*s%s': ends with '/'",
                             what, shown, key, more);

    const char *comp = key;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == '/' || c == '\0') {
            size_t clen = (size_t)(key + i - comp);
            bool last = c == '\0';
            if (clen == 0 && !(last && partial_last))
                return mf__error_set(MF_EINVAL,
                                     "datastore %s '%.*s%s': empty path component",
                                     what, shown, key, more);
            /* Leading '.' covers ".", ".." (path traversal) and the fs
             * backend's temp files, which must never collide with a key. */
            if (clen > 0 && comp[0] == '.')
                return mf__error_set(MF_EINVAL,
                                     "datastore %s '%.*s%s': component '%.*s' starts with '.'",
                                     what, shown, key, more,
                                     (int)(clen > SHOWN ? SHOWN : clen), comp);
            comp = key + i + 1;
            continue;
        }
        if (!key_char(c))
            return mf__error_set(MF_EINVAL,
                                 "datastore %s '%.*s%s': invalid character 0x%02x at byte %zu",
                                 what, shown, key, more, c, i);
    }
    return MF_OK;
}

MF_EXTERN(int) mf_datastore_key_check(const char *key)
{
    return check("key", key, false);
}

int mf__datastore_prefix_check(const char *prefix)
{
    return check("prefix", prefix, true);
}
