/* String lists returned by queries. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

struct mf_strlist {
    char **items;
    size_t count;
    size_t cap;
};

mf_strlist *mf__strlist_new(void)
{
    mf_strlist *l = calloc(1, sizeof *l);
    if (!l)
        mf__error_oom();
    return l;
}

int mf__strlist_pushn(mf_strlist *list, const char *s, size_t len)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        char **items = realloc(list->items, cap * sizeof *items);
        if (!items)
            return mf__error_oom();
        list->items = items;
        list->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return mf__error_oom();
    memcpy(copy, s, len);
    copy[len] = '\0';
    list->items[list->count++] = copy;
    return MF_OK;
}

int mf__strlist_push(mf_strlist *list, const char *s)
{
    return mf__strlist_pushn(list, s, strlen(s));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void mf__strvec_sort(char **v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_str);
}

size_t mf__strvec_uniq(char **v, size_t n)
{
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (w > 0 && strcmp(v[w - 1], v[r]) == 0) {
            free(v[r]);
            continue;
        }
        v[w++] = v[r];
    }
    return w;
}

void mf__strlist_sort(mf_strlist *list)
{
    mf__strvec_sort(list->items, list->count);
}

void mf__strlist_uniq(mf_strlist *list)
{
    list->count = mf__strvec_uniq(list->items, list->count);
}

bool mf__strlist_contains(const mf_strlist *list, const char *s)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->items[i], s) == 0)
            return true;
    return false;
}

void mf__strvec_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

MF_EXTERN(size_t) mf_strlist_count(const mf_strlist *list)
{
    return list ? list->count : 0;
}

MF_EXTERN(const char *) mf_strlist_get(const mf_strlist *list, size_t i)
{
    if (!list || i >= list->count)
        return NULL;
    return list->items[i];
}

MF_EXTERN(void) mf_strlist_free(mf_strlist *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    free(list);
}
