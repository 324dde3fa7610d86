/* Validation and set-up of a job. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "core/text.h"
#include "engine/plan.h"
#include "tessera/stop.h"

/* --nodata: the output's GDAL_NODATA, in the text GDAL writes: a whole
 * number within u8 or u16, the float's own digits for f32 ("nan"). What
 * the dtype can hold is ts_reduce_make's to say, as for an input's value. */
static ts_status set_nodata(ts_plan *p, const char *v, ts_error *err) {
  if (!strcmp(v, "none")) return ts_image_meta_put_text(&p->meta, 42113, NULL, err);
  const ts_dtype t = p->pipe->out_dtype;
  const ts_reduce r = ts_reduce_make(TS_DOWNSAMPLE_MEAN, v, t);
  const double d = strtod(v, NULL);
  if (!r.has_nodata)
    return ts_fail(err, TS_ERR_USAGE, "--nodata %s: the output's samples are %s, whole numbers from 0 to %d", v,
                   ts_dtype_name(t), t == TS_U8 ? 255 : 65535);
  if (isfinite(d) && !isfinite(r.nodata))
    return ts_fail(err, TS_ERR_USAGE, "--nodata %s: beyond the range of the output's f32 samples", v);
  char text[64];
  snprintf(text, sizeof text, isnan(r.nodata) ? "nan" : t == TS_F32 ? "%.9g" : "%.0f", r.nodata);
  return ts_image_meta_put_text(&p->meta, 42113, text, err);
}

int64_t ts_plan_out_tile(const ts_job *job) {
  if (job->out_tile) return job->out_tile;
  for (int64_t t = 256; t > 16; t /= 2)
    if (job->tile % t == 0) return t;
  return 16;
}

void ts_plan_size_cache(ts_reader *r, const ts_grid *g) {
  /* two stripe-rows of source blocks: tasks move along a stripe row and
   * the next row reuses the blocks under the shared halo */
  const ts_image_info *info = &r->info;
  int64_t span_w = g->stripe * g->tile + 2 * g->halo, span_h = g->tile + 2 * g->halo;
  ts_reader_set_cache(r, 2 * (span_w / info->block_w + 2) * (span_h / info->block_h + 2));
}

ts_status ts_plan_open(ts_plan *p, const ts_job *job, ts_error *err) {
  ts_status st;
  memset(p, 0, sizeof *p);
  p->job = job;
  if (job->tile < 16 || job->tile % 16)
    return ts_fail(err, TS_ERR_USAGE, "--tile %lld: the tile size must be a positive multiple of 16",
                   (long long)job->tile);
  p->out_tile = ts_plan_out_tile(job);
  if (p->out_tile % 16 || job->tile % p->out_tile)
    return ts_fail(err, TS_ERR_USAGE, "--out-tile %lld must be a multiple of 16 that divides --tile %lld",
                   (long long)p->out_tile, (long long)job->tile);
  if ((st = ts_reader_open_level(job->input, job->page, job->input_level, &p->reader, err))) return st;
  const ts_image_info *info = &p->reader->info;
  if ((st = ts_pipeline_parse(job->pipeline, info->dtype, info->channels, &p->pipe, err))) goto fail;
  for (int i = 0; i < p->pipe->n; i++)
    if (p->pipe->k[i].def->flags & TS_KERNEL_WHOLE) {
      st = ts_fail(err, TS_ERR_PIPELINE, "%s works on whole images, in list mode only (a directory, @list "
                   "or HDF5 stack as --input); %s is one image cut into tiles", p->pipe->k[i].def->name,
                   job->input);
      goto fail;
    }
  for (int i = 0; i < p->pipe->n; i++)
    if (p->pipe->k[i].align > 1 && job->tile % p->pipe->k[i].align) {
      int64_t m = p->pipe->align; /* the smallest step that is also a multiple of 16 */
      while (m % 16) m += p->pipe->align;
      st = ts_fail(err, TS_ERR_USAGE, "--tile %lld: %s works on %lld x %lld blocks aligned to the image, so the tile "
                   "size must be a multiple of %lld (--tile %lld would do)", (long long)job->tile,
                   p->pipe->k[i].def->name, (long long)p->pipe->k[i].align, (long long)p->pipe->k[i].align,
                   (long long)p->pipe->k[i].align, (long long)((job->tile / m + 1) * m));
      goto fail;
    }
  /* tiled inputs walk in stripes of 4 tiles; strips span the width anyway */
  if ((st = ts_grid_init(&p->grid, info->w, info->h, job->tile, p->pipe->halo,
                         info->block_w >= info->w ? 0 : 4 * job->tile, err)))
    goto fail;
  /* the layout: named, or OME-TIFF by the output's name; a COG has overviews */
  const size_t len = strlen(job->output);
  const int ome_name = (len > 8 && !strcasecmp(job->output + len - 8, ".ome.tif")) ||
                       (len > 9 && !strcasecmp(job->output + len - 9, ".ome.tiff"));
  const ts_layout layout = job->layout >= 0 ? (ts_layout)job->layout : ome_name ? TS_LAYOUT_OME : TS_LAYOUT_PLAIN;
  if ((st = ts_image_meta_for_output(ts_reader_meta(p->reader), p->pipe->n > 0, p->pipe->out_channels, &p->meta, err)))
    goto fail;
  if (job->nodata && (st = set_nodata(p, job->nodata, err))) goto fail;
  const ts_meta_tag *nodata = ts_meta_find(&p->meta, 42113); /* GDAL_NODATA, ASCII */
  p->reduce = ts_reduce_make(job->downsample, nodata && nodata->type == 2 ? (const char *)nodata->data : NULL,
                             p->pipe->out_dtype);
  ts_levels_init(&p->levels, info->w, info->h, p->out_tile, job->tile,
                 job->pyramid || layout == TS_LAYOUT_COG ? job->pyramid_levels : 0);
  /* metadata holds text: a pipeline's bytes that are not UTF-8 (a path
   * in a parameter) would make OME-XML and Zarr's JSON unreadable */
  if (!(p->description = ts_utf8_dup(p->pipe->text))) {
    st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
    goto fail;
  }
  ts_writer_options wo = {
      .w = info->w, .h = info->h, .channels = p->pipe->out_channels, .dtype = p->pipe->out_dtype,
      .tile = p->out_tile, .compression = job->compression, .quality = job->quality,
      .level = job->compression_level,
      .force = job->force, .description = p->description,
      .levels = p->levels.n, .layout = layout, .downsample = ts_downsample_name(job->downsample),
      .meta = &p->meta, .has_nodata = p->reduce.has_nodata, .nodata = p->reduce.nodata,
      .zarr_format = job->zarr_format, .shard = job->shard,
  };
  p->wopts = wo;
  if ((st = ts_compression_level_check(job->compression, 0, job->compression_level, err))) goto fail;
  ts_stop_immediate(0); /* files change from here on: a stop keeps what it must */
  if ((st = ts_plan_open_output(p, err))) goto fail;
  ts_plan_size_cache(p->reader, &p->grid);
  return TS_OK;
fail:
  ts_plan_close(p);
  return st;
}

void ts_plan_close(ts_plan *p) {
  ts_writer_abort(&p->writer);
  ts_journal_close(&p->journal, 1); /* a failed run leaves nothing; a stopped one has kept both already */
  ts_journal_state_free(&p->saved);
  free(p->prev_partial);
  free(p->prev_journal);
  p->prev_partial = p->prev_journal = NULL;
  ts_pipeline_free(&p->pipe);
  free(p->description);
  p->description = NULL;
  ts_image_meta_free(&p->meta);
  ts_reader_close(&p->reader);
}
