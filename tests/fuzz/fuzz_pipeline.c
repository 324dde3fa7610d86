/* The pipeline parser, then the parsed pipeline run over a small image as
 * list mode runs it (whole-image kernels, emits). The first byte picks
 * the dtype and channels; the rest is the pipeline text. */
#include "fuzz.h"
#include "tessera/tessera.h"

/* Kernels that make an image of the size their parameters ask for
 * (resize to 2^30 x 2^30 is a valid request, and slow): the harness runs
 * pipelines whose images stay under 1 Mpx, as any real one of this input. */
static int too_big(const ts_pipeline *p) {
  double w = 33, h = 21;
  for (int i = 0; i < p->n; i++) {
    const ts_kernel *k = &p->k[i];
    if (!strcmp(k->def->name, "resize")) {
      if (k->v[2].given) w *= k->v[2].num, h *= k->v[2].num;
      else w = k->v[0].num, h = k->v[1].num;
    } else if (!strcmp(k->def->name, "bbox_crop")) {
      w = h = (w > h ? w : h) + k->v[4].num;
    }
    if (w * h > (1 << 20)) return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static unsigned char px[33 * 21 * 4 * 4];
  static ts_scratch *s;
  if (n < 1 || n > 4096) return 0;
  if (!s && !(s = ts_scratch_new())) abort();
  ts_dtype dt = (ts_dtype)(data[0] % 3);
  int channels = 1 + (data[0] / 3) % 4;
  /* py:MODULE.FUNCTION imports and calls whatever the text names: the
   * parser's handling of those names is checked, not Python's modules */
  if (fuzz_has(data, n, "py:")) return 0;
  char *text = malloc(n);
  if (!text) abort();
  memcpy(text, data + 1, n - 1);
  text[n - 1] = '\0';
  for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 7 + i / 33);
  if (dt == TS_F32)
    for (size_t i = 0; i < sizeof px / 4; i++) ((float *)px)[i] = (float)(i % 97) / 96.0f;
  ts_pipeline *p = NULL;
  ts_error e;
  if (ts_pipeline_parse(text, dt, channels, &p, &e) == TS_OK && !too_big(p)) {
    ts_image in = {33, 21, channels, dt, 33 * (int64_t)ts_dtype_size(dt) * channels, px}, out;
    ts_emits em = {0};
    ts_pipeline_run_image(p, &in, TS_BOUNDARY_REFLECT, 0, &out, &em, s, &e);
    ts_emits_free(&em);
  }
  ts_pipeline_free(&p);
  free(text);
  return 0;
}
