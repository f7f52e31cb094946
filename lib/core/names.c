/* Name rules shared by every layer. They keep names safe as datastore key
 * components and compatible with Metaflow's (Python identifiers). */
#include <string.h>

#include "core.h"

#define MF_NAME_MAX 255

static bool is_lower_digit_us(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int mf__check_flow_name(const char *name)
{
    if (!name || !*name)
        return mf__error_set(MF_EINVAL, "flow name is empty");
    size_t n = strlen(name);
    if (n > MF_NAME_MAX)
        return mf__error_set(MF_EINVAL, "flow name '%.40s...' is longer than %d bytes",
                             name, MF_NAME_MAX);
    if (!is_alpha(name[0]))
        return mf__error_set(MF_EINVAL, "flow name '%s' must start with a letter", name);
    for (size_t i = 1; i < n; i++)
        if (!is_alpha(name[i]) && !is_digit(name[i]) && name[i] != '_')
            return mf__error_set(MF_EINVAL,
                                 "flow name '%s' has a character outside [A-Za-z0-9_]", name);
    if (strcmp(name, "data") == 0)
        return mf__error_set(MF_EINVAL, "flow name 'data' is reserved for the content store");
    return MF_OK;
}

bool mf__step_name_reserved(const char *name)
{
    static const char *const reserved[] = {"name", "next", "input", "index", "cmd"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp(name, reserved[i]) == 0)
            return true;
    return false;
}

int mf__check_step_name(const char *name)
{
    if (!name || !*name)
        return mf__error_set(MF_EINVAL, "step name is empty");
    size_t n = strlen(name);
    if (n > MF_NAME_MAX)
        return mf__error_set(MF_EINVAL, "step name '%.40s...' is longer than %d bytes",
                             name, MF_NAME_MAX);
    if (name[0] == '_')
        return mf__error_set(MF_EINVAL, "step name '%s' must not start with '_'", name);
    for (size_t i = 0; i < n; i++)
        if (!is_lower_digit_us(name[i]))
            return mf__error_set(MF_EINVAL,
                                 "step name '%s' has a character outside [a-z0-9_]", name);
    if (mf__step_name_reserved(name))
        return mf__error_set(MF_EINVAL, "step name '%s' is reserved", name);
    return MF_OK;
}

int mf__check_artifact_name(const char *name)
{
    if (!name || !*name)
        return mf__error_set(MF_EINVAL, "artifact name is empty");
    size_t n = strlen(name);
    if (n > MF_NAME_MAX)
        return mf__error_set(MF_EINVAL, "artifact name '%.40s...' is longer than %d bytes",
                             name, MF_NAME_MAX);
    if (!is_alpha(name[0]) && name[0] != '_')
        return mf__error_set(MF_EINVAL,
                             "artifact name '%s' must start with a letter or '_'", name);
    for (size_t i = 1; i < n; i++)
        if (!is_alpha(name[i]) && !is_digit(name[i]) && name[i] != '_')
            return mf__error_set(MF_EINVAL,
                                 "artifact name '%s' has a character outside [A-Za-z0-9_]",
                                 name);
    return MF_OK;
}

int mf__check_id(const char *what, const char *id)
{
    return mf__check_id_max(what, id, 128);
}

int mf__check_id_max(const char *what, const char *id, size_t max)
{
    if (!id || !*id)
        return mf__error_set(MF_EINVAL, "%s is empty", what);
    size_t n = strlen(id);
    if (n > max)
        return mf__error_set(MF_EINVAL, "%s '%.40s...' is longer than %zu bytes", what, id,
                             max);
    if (id[0] == '.')
        return mf__error_set(MF_EINVAL, "%s '%s' must not start with '.'", what, id);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '-' && c != '.')
            return mf__error_set(MF_EINVAL,
                                 "%s '%s' has a character outside [A-Za-z0-9_.-]", what, id);
    }
    return MF_OK;
}

int mf__check_tag(const char *tag)
{
    if (!tag || !*tag)
        return mf__error_set(MF_EINVAL, "tag is empty");
    size_t n = strlen(tag);
    if (n > 1024)
        return mf__error_set(MF_EINVAL, "tag '%.40s...' is longer than 1024 bytes", tag);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tag[i];
        if (c < 0x20 || c == 0x7f)
            return mf__error_set(MF_EINVAL, "tag '%.40s' has a control character", tag);
    }
    return MF_OK;
}
