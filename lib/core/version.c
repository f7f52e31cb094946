#include "core.h"

MF_EXTERN(uint32_t) mf_version(void)
{
    return MF_VERSION_NUMBER;
}

MF_EXTERN(const char *) mf_version_string(void)
{
    return MF_VERSION_STRING;
}
