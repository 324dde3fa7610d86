/* What a TIFF input says about where its pixels lie and what they mean,
 * read from its directory as stored (libtiff does not know the GeoTIFF and
 * GDAL tags, and would hand them over only as untyped blobs): the tags
 * carried to TIFF outputs (README "Metadata"), and the pixel size, from
 * OME-XML or else the resolution tags. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/backends.h"

/* The tags an output keeps (values as stored, little-endian). */
static const uint16_t kept[] = {
    282, 283, 296,                    /* XResolution, YResolution, ResolutionUnit */
    33550, 33922, 34264,              /* ModelPixelScale, ModelTiepoint, ModelTransformation */
    34735, 34736, 34737,              /* GeoKeyDirectory, GeoDoubleParams, GeoAsciiParams */
    34675,                            /* ICC profile */
    42112, 42113,                     /* GDAL_METADATA, GDAL_NODATA */
};

void ts_image_meta_free(ts_image_meta *m) {
  for (int i = 0; i < m->n; i++) free(m->tags[i].data);
  free(m->tags);
  memset(m, 0, sizeof *m);
}

const ts_meta_tag *ts_meta_find(const ts_image_meta *m, uint16_t tag) {
  for (int i = 0; m && i < m->n; i++)
    if (m->tags[i].tag == tag) return &m->tags[i];
  return NULL;
}

/* The value of attribute `name` in the tag text [p, e), or NULL. */
static const char *attr(const char *p, const char *e, const char *name, size_t *len) {
  const size_t n = strlen(name);
  for (const char *a = p + 1; a + n + 2 < e; a++) /* p is the tag's '<' */
    if ((a[-1] == ' ' || a[-1] == '\t' || a[-1] == '\n') && !memcmp(a, name, n) && a[n] == '=' &&
        (a[n + 1] == '"' || a[n + 1] == '\'')) {
      const char *v = a + n + 2, *q = memchr(v, a[n + 1], (size_t)(e - v));
      if (!q) return NULL;
      *len = (size_t)(q - v);
      return v;
    }
  return NULL;
}

/* GDAL_METADATA's text t, in place, without the items that no longer
 * hold; its new length (0: no item left). `<Item ...>value</Item>`, one
 * after another (values are XML-escaped, so an item ends at the first
 * `</Item>`); what is kept moves down, never up. */
static size_t gdal_items(char *t, int changed, int channels) {
  size_t o = 0;
  int items = 0;
  const char *p = t;
  for (;;) {
    const char *s = strstr(p, "<Item"), *e = s ? strstr(s, "</Item>") : NULL;
    if (!e) break;
    e += 7;
    const char *gt = memchr(s, '>', (size_t)(e - s));
    size_t nl = 0, sl = 0;
    const char *name = attr(s, gt, "name", &nl), *sample = attr(s, gt, "sample", &sl);
    const int stat = name && nl > 11 && !memcmp(name, "STATISTICS_", 11);
    const int band = sample ? atoi(sample) : -1;
    const int keep = !(changed && stat) && band < channels;
    /* the text before the item (indentation) goes with it */
    const char *from = p;
    if (keep) {
      memmove(t + o, from, (size_t)(e - from));
      o += (size_t)(e - from);
      items++;
    } else {
      while (from < s && from[0] != '\n') from++; /* the line break and indentation go with the item */
      memmove(t + o, p, (size_t)(from - p));
      o += (size_t)(from - p);
    }
    p = e;
  }
  const size_t rest = strlen(p);
  memmove(t + o, p, rest + 1);
  return items ? o + rest : 0;
}

ts_status ts_image_meta_for_output(const ts_image_meta *in, int changed, int channels, ts_image_meta *out,
                                   ts_error *err) {
  memset(out, 0, sizeof *out);
  if (!in) return TS_OK;
  out->um_x = in->um_x, out->um_y = in->um_y;
  if (in->n && !(out->tags = calloc((size_t)in->n, sizeof *out->tags))) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int i = 0; i < in->n; i++) {
    const ts_meta_tag *t = &in->tags[i];
    ts_meta_tag *nt = &out->tags[out->n];
    *nt = *t;
    if (!(nt->data = malloc(t->bytes + 1))) {
      ts_image_meta_free(out);
      return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    }
    memcpy(nt->data, t->data, t->bytes);
    nt->data[t->bytes] = '\0'; /* (ASCII values end in one already; a guard for those that do not) */
    if (t->tag == 42112 && t->type == 2) {
      const size_t n = gdal_items((char *)nt->data, changed, channels);
      if (!n) {
        free(nt->data);
        continue;
      }
      nt->bytes = nt->count = n + 1; /* with its NUL */
    }
    out->n++;
  }
  return TS_OK;
}

ts_status ts_image_meta_put_text(ts_image_meta *m, uint16_t tag, const char *text, ts_error *err) {
  int i = 0;
  while (i < m->n && m->tags[i].tag != tag) i++;
  if (i < m->n) { /* drop the old one, keeping the order of the rest */
    free(m->tags[i].data);
    memmove(&m->tags[i], &m->tags[i + 1], (size_t)(m->n - i - 1) * sizeof *m->tags);
    m->n--;
  }
  if (!text) return TS_OK;
  const size_t n = strlen(text) + 1;
  ts_meta_tag *t = realloc(m->tags, (size_t)(m->n + 1) * sizeof *t);
  unsigned char *d = malloc(n);
  if (t) m->tags = t;
  if (!t || !d) {
    free(d);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  memcpy(d, text, n);
  m->tags[m->n++] = (ts_meta_tag){.tag = tag, .type = 2, .count = n, .bytes = n, .data = d};
  return TS_OK;
}

static unsigned type_size(uint16_t t) {
  static const unsigned sizes[] = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4, 0, 0, 8, 8, 8};
  return t < sizeof sizes / sizeof *sizes ? sizes[t] : 0;
}

static uint64_t get(const unsigned char *p, int n, int be) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
  return v;
}

/* Element-wise to little-endian (RATIONALs are two LONGs). */
static void to_le(unsigned char *p, uint64_t count, unsigned size, uint16_t type) {
  if (type == 5 || type == 10) count *= 2, size = 4;
  for (uint64_t i = 0; i < count; i++, p += size)
    for (unsigned a = 0, b = size - 1; a < b; a++, b--) {
      unsigned char t = p[a];
      p[a] = p[b];
      p[b] = t;
    }
}

/* A length unit of OME's (UnitsLength) in micrometres; 0: unknown. */
static double um_per(const char *u, size_t n) {
  static const struct { const char *name; double um; } units[] = {
      {"\xc2\xb5m", 1}, {"um", 1}, {"nm", 1e-3}, {"mm", 1e3}, {"cm", 1e4}, {"m", 1e6}, {"\xc3\x85", 1e-4}};
  for (unsigned i = 0; i < sizeof units / sizeof *units; i++)
    if (strlen(units[i].name) == n && !memcmp(u, units[i].name, n)) return units[i].um;
  return 0;
}

/* PhysicalSizeX="v" (and its unit, default µm) of the first Pixels. */
static double ome_size(const char *xml, const char *attr) {
  char key[40];
  snprintf(key, sizeof key, " %s=\"", attr);
  const char *p = strstr(xml, key);
  if (!p) return 0;
  double v = strtod(p + strlen(key), NULL);
  snprintf(key, sizeof key, " %sUnit=\"", attr);
  const char *u = strstr(xml, key);
  double per = 1;
  if (u) {
    u += strlen(key);
    const char *e = strchr(u, '"');
    per = e ? um_per(u, (size_t)(e - u)) : 0;
  }
  return v > 0 && per > 0 ? v * per : 0;
}

ts_status ts_tiff_meta_read(const char *path, uint64_t diroff, ts_image_meta *m, ts_error *err) {
  memset(m, 0, sizeof *m);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return TS_OK; /* the reader opened it: nothing to add */
  unsigned char h[16], e[20];
  char *xml = NULL;
  ts_status st = TS_OK;
  const off_t size = lseek(fd, 0, SEEK_END);
  if (pread(fd, h, 8, 0) != 8) goto done;
  const int be = h[0] == 'M', big = get(h + 2, 2, be) == 43;
  const unsigned esz = big ? 20 : 12, csz = big ? 8 : 2, inl = big ? 8 : 4;
  unsigned char c[8];
  if (pread(fd, c, csz, (off_t)diroff) != (ssize_t)csz) goto done;
  const uint64_t n = get(c, (int)csz, be);
  for (uint64_t i = 0; i < n && i < 4096 && st == TS_OK; i++) {
    if (pread(fd, e, esz, (off_t)(diroff + csz + i * esz)) != (ssize_t)esz) break;
    const uint16_t tag = (uint16_t)get(e, 2, be), type = (uint16_t)get(e + 2, 2, be);
    const uint64_t count = get(e + 4, big ? 8 : 4, be);
    const unsigned ts = type_size(type);
    int want = tag == 270;
    for (unsigned k = 0; k < sizeof kept / sizeof *kept; k++) want |= tag == kept[k];
    if (!want || !ts || count == 0 || count > (16u << 20) / ts) continue; /* at most 16 MB a tag */
    const size_t bytes = (size_t)count * ts;
    unsigned char *v = malloc(bytes + 1);
    if (!v) {
      st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
      break;
    }
    const unsigned char *val = e + (big ? 12 : 8);
    if (bytes <= inl) memcpy(v, val, bytes);
    else {
      const uint64_t off = get(val, (int)inl, be);
      if (off > (uint64_t)size || bytes > (uint64_t)size - off || pread(fd, v, bytes, (off_t)off) != (ssize_t)bytes) {
        free(v); /* outside the file: not carried */
        continue;
      }
    }
    v[bytes] = '\0';
    if (be) to_le(v, count, ts, type);
    if (tag == 270) { /* not kept: tessera writes its own; read for OME's sizes */
      free(xml);
      xml = (char *)v;
      continue;
    }
    ts_meta_tag *nt = realloc(m->tags, (size_t)(m->n + 1) * sizeof *nt);
    if (!nt) {
      free(v);
      st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
      break;
    }
    m->tags = nt;
    nt[m->n++] = (ts_meta_tag){tag, type, count, bytes, v};
  }
  if (xml && strstr(xml, "<OME")) m->um_x = ome_size(xml, "PhysicalSizeX"), m->um_y = ome_size(xml, "PhysicalSizeY");
  if (m->um_x <= 0 || m->um_y <= 0) { /* the resolution tags, per cm or inch */
    const ts_meta_tag *x = ts_meta_find(m, 282), *y = ts_meta_find(m, 283), *u = ts_meta_find(m, 296);
    uint32_t xr[2], yr[2];
    uint16_t unit = 2; /* TIFF's default: inch */
    if (u && u->type == 3) memcpy(&unit, u->data, 2);
    if (x && y && x->type == 5 && y->type == 5 && (unit == 2 || unit == 3)) {
      memcpy(xr, x->data, 8), memcpy(yr, y->data, 8);
      const double per = unit == 3 ? 1e4 : 25400;
      if (xr[0] && yr[0] && xr[1] && yr[1])
        m->um_x = per * xr[1] / xr[0], m->um_y = per * yr[1] / yr[0];
    }
    if (!u) m->um_x = m->um_y = 0; /* resolution without a unit: a screen's dpi, not a size */
  }
done:
  free(xml);
  close(fd);
  if (st) ts_image_meta_free(m);
  return st;
}
