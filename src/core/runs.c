/* Literals and runs: the run finder, and deflate; see runs.h.
 *
 * Deflate, per block of at most TS_RUNS_BLOCK input bytes: find the runs (one
 * pass, a word at a time), count the symbols, build Huffman codes of at
 * most LITLEN_LIMIT bits, write one dynamic block (RFC 1951 3.2.7), or a stored
 * one when that is not larger. Every choice is a function of the input
 * alone, so the bytes are too. */
#include "core/runs.h"
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define NLITLEN 286 /* 0..255 literals, 256 end of block, 257..285 lengths */
#define NDIST 2     /* distance code 0 (distance 1) and a partner, so the code is complete */
#define NCL 19      /* code-length alphabet */
/* The literal/length codes' longest: 14 bits (deflate allows 15), so four
 * literals and the 7 bits held between them fit one 64-bit store. It
 * cost nothing in size: the pyramid benchmark's flat deflate output came
 * out 0.02% smaller than with 15. */
#define LITLEN_LIMIT 14

static uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static void store64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Skips the aligned words from w on, two at a time, while neither is one
 * value; returns the first word that may be (or where fewer than 16
 * bytes are left). */
static size_t skip_mixed(const uint8_t *p, size_t w, size_t n) {
#ifdef __SSE2__
  for (; w + 16 <= n; w += 16) {
    const __m128i x = _mm_loadu_si128((const __m128i *)(p + w));
    /* bit i: byte i equals byte i + 1; a word is one value when its 7 pairs are */
    const unsigned eq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_srli_si128(x, 1)));
    if ((eq & 0x7f) == 0x7f || (eq & 0x7f00) == 0x7f00) break;
  }
#else
  (void)p, (void)n;
#endif
  return w;
}

size_t ts_find_runs(const void *src, size_t n, ts_run *runs, size_t cap) {
  const uint8_t *p = src;
  size_t k = 0, w = 0;
  while (w + 8 <= n && k < cap) {
    w = skip_mixed(p, w, n);
    if (w + 8 > n) break;
    const uint64_t v = load64(p + w);
    if (v != (v & 0xff) * 0x0101010101010101ull) {
      w += 8;
      continue;
    }
    size_t s = w, e = w + 8;
    const uint8_t b = p[w];
    const size_t floor = k ? runs[k - 1].at + runs[k - 1].len : 0;
    while (s > floor && p[s - 1] == b) s--;
    while (e + 8 <= n && load64(p + e) == v) e += 8;
    while (e < n && p[e] == b) e++;
    if (e - s >= TS_RUN_MIN) runs[k++] = (ts_run){(uint32_t)s, (uint32_t)(e - s)};
    w = (e + 7) & ~(size_t)7;
  }
  return k;
}

/* Length 3..258 as its symbol 257..285, extra bits and their value. */
static void length_code(unsigned len, unsigned *sym, unsigned *nextra, unsigned *extra) {
  static const uint16_t base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                    31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
  static const uint8_t bits[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  unsigned c = 0;
  while (c < 28 && base[c + 1] <= len) c++;
  *sym = 257 + c;
  *nextra = bits[c];
  *extra = len - base[c];
}

/* The matches a run makes after its first byte (a literal): len - 1
 * bytes at distance 1, in pieces of 3..258. */
static unsigned next_piece(unsigned left) {
  if (left <= 258) return left;
  return left - 258 < 3 ? left - 3 : 258;
}

/* sym[0..m), in symbol order, sorted by f[sym] (ties stay in symbol
 * order): stable counting passes of 9 bits, as many as the largest
 * frequency needs (two at most: a block's counts are at most
 * TS_RUNS_BLOCK, below 2^18). */
static void sort_by_frequency(const uint32_t *f, int *sym, int m) {
  int tmp[NLITLEN];
  uint32_t most = 0;
  for (int i = 0; i < m; i++) most = f[sym[i]] > most ? f[sym[i]] : most;
  for (unsigned shift = 0; shift == 0 || most >> shift; shift += 9) {
    int at[513] = {0};
    for (int i = 0; i < m; i++) at[((f[sym[i]] >> shift) & 511) + 1]++;
    for (int b = 0; b < 512; b++) at[b + 1] += at[b];
    for (int i = 0; i < m; i++) tmp[at[(f[sym[i]] >> shift) & 511]++] = sym[i];
    memcpy(sym, tmp, (size_t)m * sizeof *sym);
  }
}

/* Huffman code lengths for freq[0..n) (0 for unused symbols), none longer
 * than limit: two-queue merging over the symbols sorted by frequency
 * (ties by symbol), the frequencies halved until the depths fit. At
 * least two symbols must be used. */
static void code_lengths(const uint32_t *freq, int n, int limit, uint8_t *len) {
  uint32_t f[NLITLEN];
  int sym[NLITLEN];
  memcpy(f, freq, (size_t)n * sizeof *f);
  for (;;) {
    int m = 0;
    for (int i = 0; i < n; i++)
      if (f[i]) sym[m++] = i;
    sort_by_frequency(f, sym, m);
    if (m < 2) { /* (the callers see to two; one symbol gets one bit) */
      memset(len, 0, (size_t)n);
      if (m) len[sym[0]] = 1;
      return;
    }
    /* nodes 0..m-1 leaves (sorted), m.. internal ones in order made */
    uint64_t w[2 * NLITLEN];
    int parent[2 * NLITLEN];
    for (int i = 0; i < m; i++) w[i] = f[sym[i]];
    int leaf = 0, node = m, next = m;
    for (int k = 0; k < m - 1; k++) {
      int pick[2];
      for (int t = 0; t < 2; t++)
        pick[t] = leaf < m && (node >= next || w[leaf] <= w[node]) ? leaf++ : node++;
      w[next] = w[pick[0]] + w[pick[1]];
      parent[pick[0]] = parent[pick[1]] = next++;
    }
    /* depths: the root is the last node made */
    uint8_t depth[2 * NLITLEN];
    depth[next - 1] = 0;
    int deepest = 0;
    for (int i = next - 2; i >= 0; i--) {
      depth[i] = (uint8_t)(depth[parent[i]] + 1);
      if (i < m && depth[i] > deepest) deepest = depth[i];
    }
    if (deepest <= limit) {
      memset(len, 0, (size_t)n);
      for (int i = 0; i < m; i++) len[sym[i]] = depth[i];
      return;
    }
    for (int i = 0; i < n; i++)
      if (f[i]) f[i] = (f[i] >> 1) | 1;
  }
}

/* Canonical codes (RFC 1951 3.2.2), bit-reversed for the LSB-first stream. */
static void canonical(const uint8_t *len, int n, uint16_t *code) {
  unsigned count[16] = {0}, next[16];
  for (int i = 0; i < n; i++) count[len[i]]++;
  count[0] = 0;
  unsigned c = 0;
  for (int b = 1; b < 16; b++) next[b] = c = (c + count[b - 1]) << 1;
  for (int i = 0; i < n; i++) {
    if (!len[i]) continue;
    unsigned v = next[len[i]]++, r = 0;
    for (int b = 0; b < len[i]; b++) r = (r << 1) | ((v >> b) & 1);
    code[i] = (uint16_t)r;
  }
}

typedef struct {
  uint8_t *out, *end;
  uint64_t bits;
  unsigned n;
} bitw;

/* Up to 56 bits (fewer than 8 are held between calls); the caller keeps
 * 8 bytes of room past out. */
static void put(bitw *w, uint64_t v, unsigned nb) {
  w->bits |= v << w->n;
  w->n += nb;
  if (w->n >= 8) {
    store64(w->out, w->bits);
    w->out += w->n >> 3;
    w->bits >>= w->n & ~7u;
    w->n &= 7;
  }
}

static void flush_bytes(bitw *w) {
  store64(w->out, w->bits);
  w->out += (w->n + 7) >> 3;
  w->bits = 0;
  w->n = 0;
}

/* The header's code lengths, run-length coded: symbols 0..18, extras. */
static int rle_lengths(const uint8_t *lens, int n, uint8_t *sym, uint8_t *extra) {
  int k = 0;
  for (int i = 0; i < n;) {
    int r = 1;
    while (i + r < n && lens[i + r] == lens[i]) r++;
    if (lens[i] == 0 && r >= 3) {
      r = r > 138 ? 138 : r;
      sym[k] = r >= 11 ? 18 : 17, extra[k++] = (uint8_t)(r >= 11 ? r - 11 : r - 3);
    } else if (lens[i] != 0 && r >= 4) {
      sym[k] = lens[i], extra[k++] = 0; /* the value once, then repeats of 3..6 */
      r = r - 1 > 6 ? 7 : r;
      sym[k] = 16, extra[k++] = (uint8_t)(r - 1 - 3);
    } else {
      r = 1;
      sym[k] = lens[i], extra[k++] = 0;
    }
    i += r;
  }
  return k;
}

static size_t stored(const uint8_t *src, size_t n, int last, bitw *w, size_t room) {
  size_t need = 0;
  for (size_t at = 0; at < n || at == 0; at += 65535) need += 5 + (n - at < 65535 ? n - at : 65535);
  if (need + 8 > room) return 0;
  size_t at = 0;
  do {
    const size_t k = n - at < 65535 ? n - at : 65535;
    put(w, (last && at + k == n) ? 1 : 0, 3); /* BFINAL, BTYPE 00 */
    flush_bytes(w);
    const uint8_t h[4] = {(uint8_t)k, (uint8_t)(k >> 8), (uint8_t)~k, (uint8_t)(~k >> 8)};
    memcpy(w->out, h, 4);
    memcpy(w->out + 4, src + at, k);
    w->out += 4 + k;
    at += k;
  } while (at < n);
  return 1;
}

/* One block: src[0..n); runs within it. 0 when it does not fit. */
static int block(const uint8_t *src, size_t n, const ts_run *runs, size_t nruns, int last, bitw *w) {
  uint32_t freq[NLITLEN] = {0};
  uint32_t hist[4][256] = {{0}}; /* four tables: no store-to-load stall on repeats */
  size_t at = 0;
  uint64_t extra_bits = 0;
  for (size_t r = 0; r <= nruns; r++) {
    const size_t e = r < nruns ? runs[r].at + 1 : n; /* literals up to and with the run's first byte */
    size_t i = at;
    for (; i + 4 <= e; i += 4) hist[0][src[i]]++, hist[1][src[i + 1]]++, hist[2][src[i + 2]]++, hist[3][src[i + 3]]++;
    for (; i < e; i++) hist[0][src[i]]++;
    if (r == nruns) break;
    for (unsigned left = runs[r].len - 1; left;) {
      unsigned p = next_piece(left), s, nx, x;
      length_code(p, &s, &nx, &x);
      freq[s]++;
      extra_bits += nx;
      left -= p;
    }
    at = runs[r].at + runs[r].len;
  }
  for (int b = 0; b < 256; b++) freq[b] = hist[0][b] + hist[1][b] + hist[2][b] + hist[3][b];
  freq[256] = 1;
  int used = 0;
  for (int i = 0; i < NLITLEN; i++) used += freq[i] != 0;
  if (used < 2) freq[freq[0] ? 1 : 0] = 1; /* two symbols at least: a complete code */

  uint8_t len[NLITLEN + NDIST], clen[NCL];
  uint16_t code[NLITLEN] = {0}, ccode[NCL] = {0};
  code_lengths(freq, NLITLEN, LITLEN_LIMIT, len);
  len[NLITLEN] = len[NLITLEN + 1] = 1; /* distances: codes 0 and 1, one bit each */
  int hlit = NLITLEN;
  while (hlit > 257 && !len[hlit - 1]) hlit--;
  uint8_t all[NLITLEN + NDIST], rs[NLITLEN + NDIST], rx[NLITLEN + NDIST];
  memcpy(all, len, (size_t)hlit);
  all[hlit] = all[hlit + 1] = 1;
  const int nr = rle_lengths(all, hlit + NDIST, rs, rx);
  uint32_t cf[NCL] = {0};
  for (int i = 0; i < nr; i++) cf[rs[i]]++;
  int cused = 0;
  for (int i = 0; i < NCL; i++) cused += cf[i] != 0;
  if (cused < 2) cf[rs[0] ? 0 : 1]++; /* (an unused partner: a complete code) */
  code_lengths(cf, NCL, 7, clen);
  static const uint8_t order[NCL] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
  int hclen = NCL;
  while (hclen > 4 && !clen[order[hclen - 1]]) hclen--;

  /* the block's exact size in bits, against a stored block's */
  uint64_t nbits = 3 + 5 + 5 + 4 + 3 * (uint64_t)hclen + extra_bits;
  for (int i = 0; i < nr; i++) nbits += clen[rs[i]] + (rs[i] == 16 ? 2 : rs[i] == 17 ? 3 : rs[i] == 18 ? 7 : 0);
  for (int i = 0; i < NLITLEN; i++) nbits += (uint64_t)freq[i] * len[i];
  for (size_t r = 0; r < nruns; r++) /* the distance codes */
    for (unsigned left = runs[r].len - 1; left; left -= next_piece(left)) nbits += 1;
  const size_t room = (size_t)(w->end - w->out);
  if ((nbits + 7) / 8 >= n + 5 * (n / 65535 + 1) || (nbits + w->n + 7) / 8 + 8 > room)
    return (int)stored(src, n, last, w, room);

  canonical(len, NLITLEN, code);
  canonical(clen, NCL, ccode);
  put(w, last ? 5 : 4, 3); /* BFINAL, BTYPE 10 */
  put(w, (uint64_t)(hlit - 257) | (uint64_t)(NDIST - 1) << 5 | (uint64_t)(hclen - 4) << 10, 14);
  for (int i = 0; i < hclen; i++) put(w, clen[order[i]], 3);
  for (int i = 0; i < nr; i++) {
    put(w, ccode[rs[i]], clen[rs[i]]);
    if (rs[i] >= 16) put(w, rx[i], rs[i] == 16 ? 2 : rs[i] == 17 ? 3 : 7);
  }
  uint64_t lc[256]; /* the literals' codes and lengths */
  uint8_t ll[256];
  for (int b = 0; b < 256; b++) lc[b] = code[b], ll[b] = len[b];
  at = 0;
  for (size_t r = 0; r <= nruns; r++) {
    const size_t e = r < nruns ? runs[r].at + 1 : n;
    size_t i = at;
    uint64_t bits = w->bits; /* in locals: stores through out could alias w */
    unsigned nb = w->n;
    uint8_t *o = w->out;
    for (; i + 4 <= e; i += 4) { /* four literals (at most 56 bits) joined apart from nb, one store */
      const unsigned a = src[i], b = src[i + 1], c = src[i + 2], d = src[i + 3];
      const unsigned la = ll[a], lab = la + ll[b], labc = lab + ll[c];
      bits |= (lc[a] | lc[b] << la | lc[c] << lab | lc[d] << labc) << nb;
      nb += labc + ll[d];
      store64(o, bits);
      o += nb >> 3;
      bits >>= nb & ~7u;
      nb &= 7;
    }
    w->bits = bits, w->n = nb, w->out = o;
    for (; i < e; i++) put(w, lc[src[i]], ll[src[i]]);
    if (r == nruns) break;
    for (unsigned left = runs[r].len - 1; left;) {
      unsigned p = next_piece(left), s, nx, x;
      length_code(p, &s, &nx, &x);
      put(w, code[s], len[s]);
      if (nx) put(w, x, nx);
      put(w, 0, 1); /* distance code 0: distance 1 */
      left -= p;
    }
    at = runs[r].at + runs[r].len;
  }
  put(w, code[256], len[256]);
  return 1;
}

size_t ts_deflate_runs(const void *src, size_t n, void *dst, size_t cap) {
  const uint8_t *p = src;
  bitw w = {dst, (uint8_t *)dst + cap, 0, 0};
  ts_run runs[TS_RUNS_BLOCK / TS_RUN_MIN + 1];
  size_t at = 0;
  do {
    const size_t k = n - at < TS_RUNS_BLOCK ? n - at : TS_RUNS_BLOCK;
    const size_t nr = ts_find_runs(p + at, k, runs, sizeof runs / sizeof *runs);
    if (!block(p + at, k, runs, nr, at + k == n, &w)) return 0;
    at += k;
  } while (at < n);
  const size_t used = (size_t)(w.out - (uint8_t *)dst) + ((w.n + 7) >> 3);
  if (used > cap) return 0;
  if (w.n) { /* the last partial byte (no 8-byte store: it may lie at the end) */
    uint8_t tail[8];
    memcpy(tail, &w.bits, 8);
    memcpy(w.out, tail, (w.n + 7) >> 3);
  }
  return used;
}
