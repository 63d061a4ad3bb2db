/*
 * examples/charlm/data.c - from files to the [T, B] token blocks a
 * training step eats, exactly as the PyTorch reference does it:
 *
 *   read_corpus   a file, or a directory's regular files sorted by name
 *                 (skipping *.dat, *.u8 and symbolic links), concatenated;
 *                 decoded as UTF-8 with Python's universal newlines
 *                 ("\r\n" and "\r" read as "\n")
 *   vocabulary    sorted(set(text)): the code points that occur, in order
 *   split         the last max(int(n * val_frac), T * B + 1) characters
 *                 are held out for validation
 *   streams       a part of n ids becomes B streams of n / B: stream b is
 *                 ids[b * n/B : (b + 1) * n/B]; cl_streams_rows gathers
 *                 rows [pos, pos + T) of all B streams, one step's input
 *
 * Memory: the text is held once, as 4-byte code points that cl_encode
 * turns into vocabulary ids in place; the streams are views into it, so a
 * corpus costs ~4 bytes per character (~5 while a file is read) where it
 * used to cost ~20 (code points, int64 ids and an int64 copy in stream
 * order). Only regular files are read (a FIFO or /dev/zero would block or
 * never end), and at most --max-data-mb MiB in all (CL_MAX_DATA_MB).
 *
 * Decoding is strict (like Python's "utf-8" codec): overlong forms,
 * surrogates, code points past U+10FFFF and truncated sequences are
 * errors, and so is a NUL byte - either means the file is not text.
 */
#include "charlm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CP 0x110000u

/* ---- UTF-8 -------------------------------------------------------------- */

/* Decodes the sequence at s[0..n): its length (1-4) and *cp, or 0 if it
 * is not valid UTF-8. */
static int utf8_get(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int len;
    uint32_t c, lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (b >= 0xC2 && b <= 0xDF)
        len = 2, c = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, c = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        if (b == 0xED)
            hi = 0x9F; /* surrogates U+D800..DFFF */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, c = b & 0x07;
        if (b == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        if (b == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else
        return 0;
    if ((size_t)len > n || s[1] < lo || s[1] > hi)
        return 0;
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[k] & 0x3F);
    }
    *cp = c;
    return len;
}

int cl_utf8_put(uint32_t c, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | (c >> 6));
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (c >> 12));
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (c >> 18));
    o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* Appends the code points of bytes s[0..n) to t (grown as needed), with
 * universal newlines. -1 with a message naming what and the offset. */
static int decode_append(const unsigned char *s, size_t n, cl_text *t,
                         int64_t *cap, const char *what)
{
    for (size_t i = 0; i < n;) {
        uint32_t c;
        int len = utf8_get(s + i, n - i, &c);
        if (!len)
            return cl_fail("%s is not UTF-8 text (byte 0x%02X at offset %zu "
                           "starts no valid character): a binary file?", what,
                           s[i], i);
        if (c == 0)
            return cl_fail("%s has a NUL byte at offset %zu: a binary file, "
                           "not text", what, i);
        i += (size_t)len;
        if (c == '\r') { /* "\r\n" -> "\n" (the \n comes next), "\r" -> "\n" */
            if (i < n && s[i] == '\n')
                continue;
            c = '\n';
        }
        if (t->n == *cap) {
            *cap = *cap ? 2 * *cap : 4096;
            t->cp = tg_xrealloc(t->cp, (size_t)*cap * sizeof *t->cp);
        }
        t->cp[t->n++] = c;
    }
    return 0;
}

int cl_utf8_decode(const char *s, cl_text *t, const char *what)
{
    int64_t cap = 0;
    *t = (cl_text){0};
    if (decode_append((const unsigned char *)s, strlen(s), t, &cap, what) < 0) {
        cl_text_free(t);
        return -1;
    }
    return 0;
}

/* ---- reading the corpus ------------------------------------------------- */

FILE *cl_open_regular(const char *path, const char *what, int64_t *size)
{
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        cl_fail("cannot read %s%s: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        cl_fail("cannot read %s%s: %s", what, path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (S_ISDIR(st.st_mode))
            cl_fail("%s%s is a directory, not a file", what, path);
        else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) ||
                 S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode))
            cl_fail("%s%s is not a regular file (a %s): charlm reads only "
                    "regular files", what, path,
                    S_ISFIFO(st.st_mode) ? "FIFO" : S_ISSOCK(st.st_mode)
                    ? "socket" : "device");
        else
            cl_fail("%s%s is not a regular file", what, path);
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *f = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0
                  ? NULL : fdopen(fd, "rb");
    if (!f) {
        cl_fail("cannot read %s%s: %s", what, path, strerror(errno));
        close(fd);
        return NULL;
    }
    *size = (int64_t)st.st_size;
    return f;
}

/* What a corpus read has used of its byte budget. */
typedef struct budget {
    int64_t used, max_mb;
    const char *root; /* the --data path, for the message */
} budget;

static int over_budget(const budget *b)
{
    return cl_fail("%s is larger than the --max-data-mb limit of %lld MiB: "
                   "give a larger --max-data-mb (charlm keeps ~4 bytes per "
                   "character in memory) or less text", b->root,
                   (long long)b->max_mb);
}

static int read_file(const char *path, cl_text *t, int64_t *cap, budget *b)
{
    int64_t size;
    FILE *f = cl_open_regular(path, "", &size);
    if (!f)
        return -1;
    if (size > b->max_mb * 1048576 - b->used) {
        fclose(f);
        return over_budget(b);
    }
    b->used += size;
    /* room for every byte as a character: no doubling, no copies */
    if (*cap < t->n + size) {
        *cap = t->n + size;
        t->cp = tg_xrealloc(t->cp, (size_t)(*cap ? *cap : 1) * sizeof *t->cp);
    }
    unsigned char *buf = tg_xmalloc((size_t)(size ? size : 1));
    size_t n = fread(buf, 1, (size_t)size, f);
    int bad = ferror(f), rc = 0;
    int e = errno;
    fclose(f);
    if (bad)
        rc = cl_fail("cannot read %s: %s", path, strerror(e));
    else /* a file that shrank meanwhile is read as it is now */
        rc = decode_append(buf, n, t, cap, path);
    free(buf);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    /* byte order of UTF-8 names = code point order = Python's sorted() */
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int read_dir(const char *dir, cl_text *t, int64_t *cap, budget *b)
{
    DIR *d = opendir(dir);
    if (!d)
        return cl_fail("cannot read directory %s: %s", dir, strerror(errno));
    char **paths = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            ends_with(e->d_name, ".dat") || ends_with(e->d_name, ".u8"))
            continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = tg_xmalloc(len);
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat st; /* lstat: a link is skipped, not followed */
        if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        paths = tg_xrealloc(paths, (n + 1) * sizeof *paths);
        paths[n++] = p;
    }
    closedir(d);
    if (n)
        qsort(paths, n, sizeof *paths, by_name);
    int rc = 0;
    if (!n)
        rc = cl_fail("directory %s has no text files (charlm reads its regular "
                     "files, skipping *.dat, *.u8 and links)", dir);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = read_file(paths[i], t, cap, b);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return rc;
}

int cl_text_read(const char *path, int64_t max_mb, cl_text *t)
{
    *t = (cl_text){0};
    int64_t cap = 0;
    budget b = {0, max_mb, path};
    struct stat st;
    if (stat(path, &st) < 0)
        return cl_fail("cannot read %s: %s", path, strerror(errno));
    int rc = S_ISDIR(st.st_mode) ? read_dir(path, t, &cap, &b)
                                 : read_file(path, t, &cap, &b);
    if (rc == 0 && t->n == 0)
        rc = cl_fail("%s is empty: there is no text to learn from", path);
    if (rc < 0)
        cl_text_free(t);
    else if (cap > t->n) /* give back what multi-byte characters left */
        t->cp = tg_xrealloc(t->cp, (size_t)t->n * sizeof *t->cp);
    return rc;
}

void cl_text_free(cl_text *t)
{
    free(t->cp);
    *t = (cl_text){0};
}

/* ---- vocabulary --------------------------------------------------------- */

void cl_vocab_build(const cl_text *t, cl_vocab *v)
{
    unsigned char *seen = tg_xcalloc(MAX_CP, 1);
    for (int64_t i = 0; i < t->n; i++)
        seen[t->cp[i]] = 1;
    v->n = 0;
    for (uint32_t c = 0; c < MAX_CP; c++)
        v->n += seen[c];
    v->chars = tg_xmalloc((size_t)(v->n ? v->n : 1) * sizeof *v->chars);
    int64_t k = 0;
    for (uint32_t c = 0; c < MAX_CP; c++)
        if (seen[c])
            v->chars[k++] = c;
    free(seen);
}

char *cl_vocab_utf8(const cl_vocab *v)
{
    char *s = tg_xmalloc((size_t)v->n * 4 + 1), *p = s;
    for (int64_t i = 0; i < v->n; i++)
        p += cl_utf8_put(v->chars[i], p);
    *p = 0;
    return s;
}

int cl_vocab_parse(const char *utf8, cl_vocab *v)
{
    cl_text t;
    *v = (cl_vocab){0};
    /* no universal newlines here: a stored "\r" would be refused below
     * anyway, as the corpus reader never produces one */
    if (cl_utf8_decode(utf8, &t, "the vocabulary") < 0)
        return -1;
    for (int64_t i = 1; i < t.n; i++)
        if (t.cp[i] <= t.cp[i - 1]) {
            cl_text_free(&t);
            return cl_fail("the vocabulary is not a sorted set of characters");
        }
    if (t.n == 0) {
        cl_text_free(&t);
        return cl_fail("the vocabulary is empty");
    }
    v->chars = t.cp;
    v->n = t.n;
    return 0;
}

void cl_vocab_free(cl_vocab *v)
{
    free(v->chars);
    *v = (cl_vocab){0};
}

int64_t cl_vocab_id(const cl_vocab *v, uint32_t c)
{
    int64_t lo = 0, hi = v->n; /* binary search in the sorted set */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v->chars[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->n && v->chars[lo] == c ? lo : -1;
}

int cl_encode(const cl_vocab *v, const uint32_t *cp, int64_t n, uint32_t *ids,
              const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t id = cl_vocab_id(v, cp[i]);
        if (id < 0) {
            char glyph[8] = "";
            if (cp[i] >= 0x20 && cp[i] != 0x7F &&
                !(cp[i] >= 0x80 && cp[i] < 0xA0)) {
                glyph[0] = '\'';
                int k = cl_utf8_put(cp[i], glyph + 1);
                glyph[1 + k] = '\'';
                glyph[2 + k] = ' ';
            }
            return cl_fail("%s: character %s(U+%04X, character %lld) is not in "
                           "the model's vocabulary of %lld characters", what,
                           glyph, (unsigned)cp[i], (long long)i, (long long)v->n);
        }
        ids[i] = (uint32_t)id; /* after cp[i] was read: ids may be cp */
    }
    return 0;
}

uint64_t cl_ids_hash(const uint32_t *ids, int64_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, 64 bits */
    for (int64_t i = 0; i < n; i++) /* of each id as 8 bytes, as it was */
        for (int k = 0; k < 8; k++) {
            h ^= ((uint64_t)ids[i] >> (8 * k)) & 0xFF;
            h *= 1099511628211ull;
        }
    return h;
}

/* ---- split and streams -------------------------------------------------- */

static void make_streams(const uint32_t *ids, int64_t n, int64_t B,
                         cl_streams *s)
{
    s->ids = ids;
    s->B = B;
    s->n = n / B;
}

void cl_streams_rows(const cl_streams *s, int64_t pos, int64_t len,
                     int64_t *out)
{
    TG_ASSERT(pos >= 0 && len >= 0 && len <= s->n - pos);
    for (int64_t i = 0; i < len; i++)
        for (int64_t b = 0; b < s->B; b++)
            out[i * s->B + b] = s->ids[b * s->n + pos + i];
}

int cl_split(const uint32_t *ids, int64_t n, const cl_config *c,
             cl_streams *train, cl_streams *val, const char *what)
{
    int64_t T = c->seq, B = c->batch;
    int64_t n_val = (int64_t)((double)n * c->val_frac); /* Python's int() */
    if (n_val < T * B + 1)
        n_val = T * B + 1;
    *train = *val = (cl_streams){0};
    if (n_val >= n)
        return cl_fail("%s is too small: %lld characters, and validation alone "
                       "takes %lld (--seq x --batch + 1, or --val-frac of the "
                       "text); use more text or a smaller --seq or --batch",
                       what, (long long)n, (long long)n_val);
    int64_t n_train = n - n_val;
    if (n_train / B < T + 1)
        return cl_fail("%s is too small for one training batch: the %lld "
                       "characters left for training make --batch %lld "
                       "streams of %lld, and a step needs --seq + 1 = %lld; "
                       "use more text or a smaller --seq or --batch", what,
                       (long long)n_train, (long long)B,
                       (long long)(n_train / B), (long long)(T + 1));
    if (n_val / B < 2)
        return cl_fail("%s: the %lld held-out characters make --batch %lld "
                       "validation streams of %lld, too short to score; use a "
                       "larger --val-frac or --seq", what, (long long)n_val,
                       (long long)B, (long long)(n_val / B));
    make_streams(ids, n_train, B, train);
    make_streams(ids + n_train, n_val, B, val);
    return 0;
}

void cl_streams_free(cl_streams *s)
{
    free(s->owned);
    *s = (cl_streams){0};
}
