/* Saturating stores and row addressing, shared by kernels, input
 * assembly and the synthetic source. */
#ifndef TS_CORE_SATURATE_H
#define TS_CORE_SATURATE_H

#include <stdint.h>

/* Round to nearest and saturate into the dtype; NaN becomes 0. */
static inline uint8_t ts_sat_u8(float v) {
  return v > 0.f ? (v < 255.f ? (uint8_t)(v + 0.5f) : 255) : 0;
}
static inline uint16_t ts_sat_u16(float v) {
  return v > 0.f ? (v < 65535.f ? (uint16_t)(v + 0.5f) : 65535) : 0;
}

#define TS_ROW(im, y) ((void *)((char *)(im)->data + (int64_t)(y) * (im)->stride))
#define TS_CROW(im, y) ((const void *)((const char *)(im)->data + (int64_t)(y) * (im)->stride))

#endif
