// An independent Zarr v3 reader for tessera's tests (zarrita, from npm):
//   node read.mjs STORE ARRAY OUT.raw
// opens STORE's group and the array at ARRAY (a path inside it), writes
// the array's elements (C order, little-endian) to OUT.raw, and prints
// {"shape", "dtype", "attributes" (the group's), "codecs"} as JSON.
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";
import { writeFileSync } from "node:fs";

const [root, path, out] = process.argv.slice(2);
const store = new FileSystemStore(root);
const group = await zarr.open.v3(zarr.root(store), { kind: "group" });
const arr = await zarr.open.v3(zarr.root(store).resolve(path), { kind: "array" });
const got = await zarr.get(arr);
writeFileSync(out, Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength));
console.log(JSON.stringify({ shape: got.shape, dtype: arr.dtype, attributes: group.attrs, codecs: arr.codecs ?? null }));
