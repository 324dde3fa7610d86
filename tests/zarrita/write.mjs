// Zarr v3 stores made by another implementation (zarrita), for tessera to read:
//   node write.mjs STORE SPEC.json IN.raw
// SPEC: {"shape", "chunks", "dtype" (uint8|uint16|float32), "codecs"
// (zarrita's codec list after bytes), "shard" (inner chunk shape or null)};
// IN.raw holds the elements, C order, little-endian.
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";
import { readFileSync } from "node:fs";

const [root, specFile, raw] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specFile, "utf8"));
const store = new FileSystemStore(root);
const bytes = readFileSync(raw);
const Typed = { uint8: Uint8Array, uint16: Uint16Array, float32: Float32Array }[spec.dtype];
const data = new Typed(bytes.buffer, bytes.byteOffset, bytes.byteLength / Typed.BYTES_PER_ELEMENT);
const bytesCodec = { name: "bytes", configuration: { endian: "little" } };
const codecs = spec.shard
  ? [{ name: "sharding_indexed", configuration: { chunk_shape: spec.shard, codecs: [bytesCodec, ...spec.codecs],
      index_codecs: [bytesCodec, { name: "crc32c" }], index_location: "end" } }]
  : [bytesCodec, ...spec.codecs];
await zarr.create(zarr.root(store), {}); // the group
const arr = await zarr.create(zarr.root(store).resolve("image"),
  { shape: spec.shape, chunkShape: spec.chunks, dtype: spec.dtype, codecs, fillValue: 0 });
const strides = spec.shape.map((_, i) => spec.shape.slice(i + 1).reduce((a, b) => a * b, 1));
await zarr.set(arr, null, { data, shape: spec.shape, stride: strides });
