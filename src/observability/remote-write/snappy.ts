/**
 * Snappy block-format compression (the format remote write requires: `Content-Encoding: snappy`
 * means one raw block, not the framed stream). Written here rather than taken from npm: the block
 * encoder is about a hundred lines, the maintained packages are either native (a prebuilt binary per
 * platform, which an edge box on an unusual CPU may not have) or decoder-first, and the tests decode
 * with an independent implementation (snappyjs), so a mistake here cannot hide behind the same code.
 *
 * A real matcher, not literal-only output (also valid snappy): metric text repeats its names and
 * label names on every series, so matching shrinks a batch several times over, which counts on an
 * edge box's uplink. The matcher is the reference one in miniature: a hash of the next 4 bytes finds
 * the last place they occurred within the same 64 KiB block; a hit is extended byte by byte.
 *
 *   block := varint(uncompressed length) element*
 *   element := literal (tag 00, length, bytes) | copy (tag 01: 1-byte offset, tag 10: 2-byte offset)
 */

/** Matches never reach across a block, so every offset fits in two bytes. */
const BLOCK = 1 << 16;
const HASH_BITS = 14;
/** Below this, a block is not worth matching (and the matcher needs some bytes of look-ahead). */
const MIN_MATCHED_INPUT = 16;

/** The most a compressed block can take (the reference's bound). */
export function maxCompressedLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}

function putVarint(out: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[pos++] = n;
  return pos;
}

function putLiteral(input: Buffer, from: number, to: number, out: Buffer, pos: number): number {
  const n = to - from;
  if (n === 0) return pos;
  const m = n - 1;
  if (m < 60) {
    out[pos++] = m << 2;
  } else {
    // Tag 60..63: the length minus one follows in 1..4 little-endian bytes.
    const bytes = m < 0x100 ? 1 : m < 0x10000 ? 2 : m < 0x1000000 ? 3 : 4;
    out[pos++] = (59 + bytes) << 2;
    for (let i = 0; i < bytes; i++) out[pos++] = (m >>> (8 * i)) & 0xff;
  }
  input.copy(out, pos, from, to);
  return pos + n;
}

/** A copy of `len` (at least 4) bytes from `offset` back, split into elements the format allows. */
function putCopy(offset: number, len: number, out: Buffer, pos: number): number {
  // A 2-byte-offset copy carries at most 64 bytes; keep at least 4 for the last one.
  while (len >= 68) {
    pos = putCopy2(offset, 64, out, pos);
    len -= 64;
  }
  if (len > 64) {
    pos = putCopy2(offset, 60, out, pos);
    len -= 60;
  }
  if (len < 12 && offset < 2048) {
    out[pos++] = 0x01 | ((len - 4) << 2) | ((offset >>> 8) << 5);
    out[pos++] = offset & 0xff;
    return pos;
  }
  return putCopy2(offset, len, out, pos);
}

function putCopy2(offset: number, len: number, out: Buffer, pos: number): number {
  out[pos++] = 0x02 | ((len - 1) << 2);
  out[pos++] = offset & 0xff;
  out[pos++] = offset >>> 8;
  return pos;
}

function compressBlock(input: Buffer, start: number, end: number, table: Int32Array, out: Buffer, pos: number): number {
  let literal = start;
  if (end - start >= MIN_MATCHED_INPUT) {
    const last = end - 4; // the last position a 4-byte hash can start at
    let i = start;
    let misses = 0;
    while (i <= last) {
      const word = input.readUInt32LE(i);
      const h = Math.imul(word, 0x1e35a7bd) >>> (32 - HASH_BITS);
      const candidate = table[h]!;
      table[h] = i;
      if (candidate < start || input.readUInt32LE(candidate) !== word) {
        // Incompressible stretches are skipped faster the longer they last (as the reference does).
        i += 1 + (misses++ >> 5);
        continue;
      }
      misses = 0;
      let len = 4;
      while (i + len < end && input[candidate + len] === input[i + len]) len++;
      pos = putLiteral(input, literal, i, out, pos);
      pos = putCopy(i - candidate, len, out, pos);
      i += len;
      literal = i;
    }
  }
  return putLiteral(input, literal, end, out, pos);
}

/** Compresses `input` into one snappy block. */
export function snappyCompress(input: Uint8Array): Buffer {
  const src = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const out = Buffer.allocUnsafe(maxCompressedLength(src.length));
  // Positions are absolute, so entries left from an earlier block fail the `candidate < start` test.
  const table = new Int32Array(1 << HASH_BITS).fill(-1);
  let pos = putVarint(out, 0, src.length);
  for (let start = 0; start < src.length; start += BLOCK) pos = compressBlock(src, start, Math.min(start + BLOCK, src.length), table, out, pos);
  return out.subarray(0, pos);
}
